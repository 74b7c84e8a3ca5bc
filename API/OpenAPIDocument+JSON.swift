// Written by deploy/openapi-embed.sh from docs/openapi.yaml: edit the document, then run the script.

extension OpenAPIDocument {
    static let text = #"""
        {
         "openapi": "3.1.0",
         "info": {
          "title": "farm",
          "version": "0.1",
          "summary": "The HTTP API of a farm coordinator, for upload services.",
          "description": "Jobs turn a video into an HLS ladder. Every route under `/v1` needs an API key\n(`Authorization: Bearer farm_\u2026`, made by an operator with `farm keys create --tenant NAME`); a key sees only\nits own tenant's jobs. Errors are RFC 9457 problem documents whose `detail` says what to do.\nThe walkthrough is docs/api.md.\n"
         },
         "servers": [
          {
           "url": "http://localhost:8080"
          }
         ],
         "security": [
          {
           "apiKey": []
          }
         ],
         "paths": {
          "/healthz": {
           "get": {
            "operationId": "health",
            "summary": "The process is up.",
            "security": [],
            "responses": {
             "200": {
              "description": "Up.",
              "content": {
               "application/json": {
                "schema": {
                 "$ref": "#/components/schemas/Status"
                }
               }
              }
             }
            }
           }
          },
          "/readyz": {
           "get": {
            "operationId": "readiness",
            "summary": "The database answers and its schema is this coordinator's.",
            "security": [],
            "responses": {
             "200": {
              "description": "Ready to serve.",
              "content": {
               "application/json": {
                "schema": {
                 "$ref": "#/components/schemas/Status"
                }
               }
              }
             },
             "503": {
              "$ref": "#/components/responses/Problem"
             }
            }
           }
          },
          "/openapi.json": {
           "get": {
            "operationId": "openAPIDocument",
            "summary": "This document, as JSON.",
            "security": [],
            "responses": {
             "200": {
              "description": "The document.",
              "content": {
               "application/json": {
                "schema": {
                 "type": "object"
                }
               }
              }
             }
            }
           }
          },
          "/v1/jobs": {
           "post": {
            "operationId": "createJob",
            "summary": "Submit a job.",
            "description": "The video is a finished upload, a URL the coordinator fetches (the job stays `submitted` until it has the\nfile; a fetch that fails for good fails the job with the reason), or a file on the coordinator's disk inside\na folder its operator allows (`farm coordinator --source-folder DIR`). The job's outputs go to a new folder\nof its own.\nWith an `Idempotency-Key`, a retried request (same key, same body) answers with the job the first made\n(`Idempotent-Replayed: true`); the same key with another body is a 409.\n",
            "parameters": [
             {
              "$ref": "#/components/parameters/IdempotencyKey"
             }
            ],
            "requestBody": {
             "required": true,
             "content": {
              "application/json": {
               "schema": {
                "$ref": "#/components/schemas/JobRequest"
               }
              }
             }
            },
            "responses": {
             "201": {
              "description": "The job, submitted.",
              "headers": {
               "Location": {
                "description": "The job's URL.",
                "schema": {
                 "type": "string"
                }
               },
               "Idempotent-Replayed": {
                "description": "`true` when the job was made by an earlier request with the same Idempotency-Key.",
                "schema": {
                 "type": "string",
                 "enum": [
                  "true"
                 ]
                }
               }
              },
              "content": {
               "application/json": {
                "schema": {
                 "$ref": "#/components/schemas/Job"
                }
               }
              }
             },
             "400": {
              "$ref": "#/components/responses/Problem"
             },
             "401": {
              "$ref": "#/components/responses/Problem"
             },
             "409": {
              "$ref": "#/components/responses/Problem"
             },
             "413": {
              "$ref": "#/components/responses/Problem"
             },
             "422": {
              "$ref": "#/components/responses/Problem"
             },
             "429": {
              "$ref": "#/components/responses/TooManyRequests"
             }
            }
           },
           "get": {
            "operationId": "listJobs",
            "summary": "The tenant's jobs, newest first.",
            "parameters": [
             {
              "name": "state",
              "in": "query",
              "schema": {
               "$ref": "#/components/schemas/JobState"
              }
             },
             {
              "name": "cursor",
              "in": "query",
              "description": "The `nextCursor` of the previous page.",
              "schema": {
               "type": "string",
               "pattern": "^[1-9][0-9]{0,17}$"
              }
             },
             {
              "name": "limit",
              "in": "query",
              "schema": {
               "type": "integer",
               "minimum": 1,
               "maximum": 100,
               "default": 20
              }
             }
            ],
            "responses": {
             "200": {
              "description": "A page of jobs.",
              "content": {
               "application/json": {
                "schema": {
                 "$ref": "#/components/schemas/JobPage"
                }
               }
              }
             },
             "400": {
              "$ref": "#/components/responses/Problem"
             },
             "401": {
              "$ref": "#/components/responses/Problem"
             }
            }
           }
          },
          "/v1/jobs/{id}": {
           "get": {
            "operationId": "getJob",
            "summary": "One job.",
            "parameters": [
             {
              "$ref": "#/components/parameters/JobID"
             }
            ],
            "responses": {
             "200": {
              "description": "The job.",
              "content": {
               "application/json": {
                "schema": {
                 "$ref": "#/components/schemas/Job"
                }
               }
              }
             },
             "401": {
              "$ref": "#/components/responses/Problem"
             },
             "404": {
              "$ref": "#/components/responses/Problem"
             }
            }
           }
          },
          "/v1/jobs/{id}/events": {
           "get": {
            "operationId": "jobEvents",
            "summary": "The job's progress as Server-Sent Events.",
            "description": "`event: state` (`{\"state\": \u2026, \"error\": \u2026}`) at each state change and `event: progress` (`tasksDone`,\n`tasksTotal`, `percent`, `speed` in \u00d7 realtime, `etaSeconds`) at each task done, each with an `id:`; a\n`: heartbeat` comment when the stream has been quiet for 15 s. The stream ends after the job's final state\nevent. Reconnect with `Last-Event-ID` to get every event after that one.\n",
            "parameters": [
             {
              "$ref": "#/components/parameters/JobID"
             },
             {
              "name": "Last-Event-ID",
              "in": "header",
              "schema": {
               "type": "string",
               "pattern": "^[0-9]{1,18}$"
              }
             }
            ],
            "responses": {
             "200": {
              "description": "The stream.",
              "content": {
               "text/event-stream": {
                "schema": {
                 "description": "The data of each event, a JSON object.",
                 "type": "object",
                 "properties": {
                  "state": {
                   "$ref": "#/components/schemas/JobState"
                  },
                  "error": {
                   "type": "string"
                  },
                  "tasksDone": {
                   "type": "integer",
                   "minimum": 0
                  },
                  "tasksTotal": {
                   "type": "integer",
                   "minimum": 0
                  },
                  "percent": {
                   "type": "number",
                   "minimum": 0,
                   "maximum": 100
                  },
                  "speed": {
                   "type": [
                    "number",
                    "null"
                   ],
                   "minimum": 0,
                   "description": "Media seconds encoded per second."
                  },
                  "etaSeconds": {
                   "type": [
                    "number",
                    "null"
                   ],
                   "minimum": 0
                  }
                 }
                }
               }
              }
             },
             "400": {
              "$ref": "#/components/responses/Problem"
             },
             "401": {
              "$ref": "#/components/responses/Problem"
             },
             "404": {
              "$ref": "#/components/responses/Problem"
             }
            }
           }
          },
          "/v1/jobs/{id}/webhooks": {
           "get": {
            "operationId": "jobWebhooks",
            "summary": "The job's webhook deliveries, with every attempt.",
            "parameters": [
             {
              "$ref": "#/components/parameters/JobID"
             }
            ],
            "responses": {
             "200": {
              "description": "The deliveries, oldest first.",
              "content": {
               "application/json": {
                "schema": {
                 "$ref": "#/components/schemas/WebhookDeliveries"
                }
               }
              }
             },
             "401": {
              "$ref": "#/components/responses/Problem"
             },
             "404": {
              "$ref": "#/components/responses/Problem"
             }
            }
           }
          },
          "/v1/jobs/{id}/cancel": {
           "post": {
            "operationId": "cancelJob",
            "summary": "Cancel a job that has not ended.",
            "parameters": [
             {
              "$ref": "#/components/parameters/JobID"
             }
            ],
            "responses": {
             "200": {
              "description": "The job, cancelled.",
              "content": {
               "application/json": {
                "schema": {
                 "$ref": "#/components/schemas/Job"
                }
               }
              }
             },
             "401": {
              "$ref": "#/components/responses/Problem"
             },
             "404": {
              "$ref": "#/components/responses/Problem"
             },
             "409": {
              "$ref": "#/components/responses/Problem"
             }
            }
           }
          },
          "/v1/jobs/{id}/retry": {
           "post": {
            "operationId": "retryJob",
            "summary": "Run a failed or cancelled job again, as a new job.",
            "description": "The new job has the same source, settings and priority, a new output folder, and `retryOf` set to this\njob's id. A job that has not ended, or ended ready, is a 409. Takes an `Idempotency-Key` as createJob does.\n",
            "parameters": [
             {
              "$ref": "#/components/parameters/JobID"
             },
             {
              "$ref": "#/components/parameters/IdempotencyKey"
             }
            ],
            "responses": {
             "201": {
              "description": "The new job, submitted.",
              "headers": {
               "Location": {
                "description": "The new job's URL.",
                "schema": {
                 "type": "string"
                }
               },
               "Idempotent-Replayed": {
                "description": "`true` when the job was made by an earlier request with the same Idempotency-Key.",
                "schema": {
                 "type": "string",
                 "enum": [
                  "true"
                 ]
                }
               }
              },
              "content": {
               "application/json": {
                "schema": {
                 "$ref": "#/components/schemas/Job"
                }
               }
              }
             },
             "400": {
              "$ref": "#/components/responses/Problem"
             },
             "401": {
              "$ref": "#/components/responses/Problem"
             },
             "404": {
              "$ref": "#/components/responses/Problem"
             },
             "409": {
              "$ref": "#/components/responses/Problem"
             },
             "429": {
              "$ref": "#/components/responses/TooManyRequests"
             }
            }
           }
          },
          "/v1/uploads": {
           "options": {
            "operationId": "uploadCapabilities",
            "summary": "What this tus server takes (tus 1.0 discovery).",
            "responses": {
             "204": {
              "description": "The tus version, extensions, largest upload and checksum algorithm.",
              "headers": {
               "Tus-Version": {
                "schema": {
                 "type": "string"
                }
               },
               "Tus-Extension": {
                "schema": {
                 "type": "string"
                }
               },
               "Tus-Max-Size": {
                "schema": {
                 "type": "string"
                }
               },
               "Tus-Checksum-Algorithm": {
                "schema": {
                 "type": "string"
                }
               }
              }
             },
             "401": {
              "$ref": "#/components/responses/Problem"
             }
            }
           },
           "post": {
            "operationId": "createUpload",
            "summary": "Create a resumable upload (tus 1.0 creation, and creation-with-upload with a body).",
            "description": "`Upload-Metadata` may carry `farm-settings`: a job's settings as JSON (as createJob takes them, without\n`source`), base64; the job is then made when the last byte is stored, and named by `Farm-Job`.\n",
            "parameters": [
             {
              "$ref": "#/components/parameters/TusResumable"
             },
             {
              "name": "Upload-Length",
              "in": "header",
              "required": true,
              "schema": {
               "type": "string",
               "pattern": "^[0-9]{1,19}$"
              }
             },
             {
              "name": "Upload-Metadata",
              "in": "header",
              "schema": {
               "type": "string"
              }
             },
             {
              "$ref": "#/components/parameters/UploadChecksum"
             }
            ],
            "requestBody": {
             "content": {
              "application/offset+octet-stream": {
               "schema": {
                "type": "string",
                "format": "binary"
               }
              }
             }
            },
            "responses": {
             "201": {
              "description": "The upload, created (with the body's bytes stored, if it had one).",
              "headers": {
               "Location": {
                "description": "The upload's URL.",
                "schema": {
                 "type": "string"
                }
               },
               "Upload-Offset": {
                "schema": {
                 "type": "string"
                }
               },
               "Upload-Expires": {
                "schema": {
                 "type": "string"
                }
               },
               "Farm-Job": {
                "description": "The job made from the upload, when it is complete.",
                "schema": {
                 "type": "string"
                }
               }
              }
             },
             "400": {
              "$ref": "#/components/responses/Problem"
             },
             "401": {
              "$ref": "#/components/responses/Problem"
             },
             "412": {
              "$ref": "#/components/responses/Problem"
             },
             "413": {
              "$ref": "#/components/responses/Problem"
             },
             "422": {
              "$ref": "#/components/responses/Problem"
             },
             "460": {
              "$ref": "#/components/responses/Problem"
             },
             "429": {
              "$ref": "#/components/responses/TooManyRequests"
             }
            }
           }
          },
          "/v1/uploads/{id}": {
           "head": {
            "operationId": "getUploadOffset",
            "summary": "How many bytes of the upload are stored.",
            "parameters": [
             {
              "$ref": "#/components/parameters/UploadID"
             },
             {
              "$ref": "#/components/parameters/TusResumable"
             }
            ],
            "responses": {
             "200": {
              "description": "The upload's offset, length and metadata.",
              "headers": {
               "Upload-Offset": {
                "schema": {
                 "type": "string"
                }
               },
               "Upload-Length": {
                "schema": {
                 "type": "string"
                }
               },
               "Upload-Metadata": {
                "schema": {
                 "type": "string"
                }
               },
               "Upload-Expires": {
                "schema": {
                 "type": "string"
                }
               },
               "Farm-Job": {
                "schema": {
                 "type": "string"
                }
               }
              }
             },
             "401": {
              "description": "Unauthorized."
             },
             "404": {
              "description": "No such upload for this key."
             },
             "412": {
              "description": "Tus-Resumable missing or another version."
             }
            }
           },
           "patch": {
            "operationId": "uploadPiece",
            "summary": "Store the next piece of the upload, from Upload-Offset.",
            "parameters": [
             {
              "$ref": "#/components/parameters/UploadID"
             },
             {
              "$ref": "#/components/parameters/TusResumable"
             },
             {
              "name": "Upload-Offset",
              "in": "header",
              "required": true,
              "schema": {
               "type": "string",
               "pattern": "^[0-9]{1,19}$"
              }
             },
             {
              "$ref": "#/components/parameters/UploadChecksum"
             }
            ],
            "requestBody": {
             "required": true,
             "content": {
              "application/offset+octet-stream": {
               "schema": {
                "type": "string",
                "format": "binary"
               }
              }
             }
            },
            "responses": {
             "204": {
              "description": "The piece, stored and fsynced.",
              "headers": {
               "Upload-Offset": {
                "schema": {
                 "type": "string"
                }
               },
               "Upload-Expires": {
                "schema": {
                 "type": "string"
                }
               },
               "Farm-Job": {
                "schema": {
                 "type": "string"
                }
               }
              }
             },
             "400": {
              "$ref": "#/components/responses/Problem"
             },
             "401": {
              "$ref": "#/components/responses/Problem"
             },
             "404": {
              "$ref": "#/components/responses/Problem"
             },
             "409": {
              "$ref": "#/components/responses/Problem"
             },
             "412": {
              "$ref": "#/components/responses/Problem"
             },
             "413": {
              "$ref": "#/components/responses/Problem"
             },
             "415": {
              "$ref": "#/components/responses/Problem"
             },
             "423": {
              "$ref": "#/components/responses/Problem"
             },
             "460": {
              "$ref": "#/components/responses/Problem"
             }
            }
           },
           "delete": {
            "operationId": "terminateUpload",
            "summary": "Remove the upload and its bytes (tus termination).",
            "parameters": [
             {
              "$ref": "#/components/parameters/UploadID"
             },
             {
              "$ref": "#/components/parameters/TusResumable"
             }
            ],
            "responses": {
             "204": {
              "description": "Removed."
             },
             "401": {
              "$ref": "#/components/responses/Problem"
             },
             "404": {
              "$ref": "#/components/responses/Problem"
             },
             "409": {
              "$ref": "#/components/responses/Problem"
             },
             "412": {
              "$ref": "#/components/responses/Problem"
             }
            }
           }
          },
          "/v1/jobs/{id}/playback": {
           "get": {
            "operationId": "getPlayback",
            "summary": "A signed URL of a ready job's master playlist.",
            "description": "The URL is relative to this API's address and needs no API key: its token (in the path) signs the job's\nwhole HLS folder until `expiresAt`, so every playlist and segment under it plays. Any coordinator of the\nfarm (same cluster secret) serves it. Ask again for a new URL when it expires.\n",
            "parameters": [
             {
              "$ref": "#/components/parameters/JobID"
             },
             {
              "name": "expires",
              "in": "query",
              "description": "The URL's lifetime in seconds.",
              "schema": {
               "type": "integer",
               "minimum": 60,
               "maximum": 604800,
               "default": 21600
              }
             }
            ],
            "responses": {
             "200": {
              "description": "The signed master playlist URL.",
              "content": {
               "application/json": {
                "schema": {
                 "$ref": "#/components/schemas/Playback"
                }
               }
              }
             },
             "400": {
              "$ref": "#/components/responses/Problem"
             },
             "401": {
              "$ref": "#/components/responses/Problem"
             },
             "404": {
              "$ref": "#/components/responses/Problem"
             },
             "409": {
              "$ref": "#/components/responses/Problem"
             }
            }
           }
          },
          "/v1/jobs/{id}/hls/{token}/{path}": {
           "get": {
            "operationId": "getPlaybackFile",
            "summary": "A file of a ready job's HLS output, through a signed URL (no API key).",
            "description": "`path` is one or two names (`master.m3u8`, `360p/playlist.m3u8`, `360p/segment_00001.m4s`) of letters,\ndigits, `_` and `-`, the file's with one of the extensions m3u8, mp4, m4s, ts, vtt, jpg. One `Range`\n(`bytes=a-b`, `a-`, `-n`) is answered with 206; several with the whole file. Playlists and cues are\ncached for 60 s, media for a year (`immutable`).\n",
            "security": [],
            "parameters": [
             {
              "$ref": "#/components/parameters/JobID"
             },
             {
              "$ref": "#/components/parameters/PlaybackToken"
             },
             {
              "$ref": "#/components/parameters/PlaybackPath"
             },
             {
              "name": "Range",
              "in": "header",
              "schema": {
               "type": "string"
              }
             },
             {
              "name": "If-None-Match",
              "in": "header",
              "schema": {
               "type": "string"
              }
             }
            ],
            "responses": {
             "200": {
              "$ref": "#/components/responses/PlaybackFile"
             },
             "206": {
              "$ref": "#/components/responses/PlaybackFile"
             },
             "304": {
              "description": "The client's copy (its ETag) is current."
             },
             "400": {
              "$ref": "#/components/responses/Problem"
             },
             "403": {
              "$ref": "#/components/responses/Problem"
             },
             "404": {
              "$ref": "#/components/responses/Problem"
             },
             "416": {
              "$ref": "#/components/responses/Problem"
             }
            }
           },
           "head": {
            "operationId": "headPlaybackFile",
            "summary": "The headers getPlaybackFile would answer with, without the body.",
            "security": [],
            "parameters": [
             {
              "$ref": "#/components/parameters/JobID"
             },
             {
              "$ref": "#/components/parameters/PlaybackToken"
             },
             {
              "$ref": "#/components/parameters/PlaybackPath"
             }
            ],
            "responses": {
             "200": {
              "description": "The file's headers."
             },
             "304": {
              "description": "The client's copy (its ETag) is current."
             },
             "400": {
              "description": "Not a path of the origin's grammar."
             },
             "403": {
              "description": "Unsigned",
              "altered or expired URL.": null
             },
             "404": {
              "description": "No such file of a ready job."
             },
             "416": {
              "description": "Range outside the file."
             }
            }
           }
          }
         },
         "components": {
          "securitySchemes": {
           "apiKey": {
            "type": "http",
            "scheme": "bearer",
            "description": "An API key, `farm_` and 43 characters."
           }
          },
          "parameters": {
           "JobID": {
            "name": "id",
            "in": "path",
            "required": true,
            "schema": {
             "type": "integer",
             "minimum": 1,
             "maximum": 9223372036854775807
            }
           },
           "IdempotencyKey": {
            "name": "Idempotency-Key",
            "in": "header",
            "description": "A key of the client's choosing (a UUID) that makes the request safe to retry: the tenant's requests with\nthe same key make one job. Kept as long as the job is.\n",
            "schema": {
             "type": "string",
             "minLength": 1,
             "maxLength": 255,
             "pattern": "^[!-~]+$"
            }
           },
           "UploadID": {
            "name": "id",
            "in": "path",
            "required": true,
            "schema": {
             "type": "string",
             "pattern": "^[0-9a-f]{32}$"
            }
           },
           "TusResumable": {
            "name": "Tus-Resumable",
            "in": "header",
            "required": true,
            "schema": {
             "type": "string",
             "enum": [
              "1.0.0"
             ]
            }
           },
           "UploadChecksum": {
            "name": "Upload-Checksum",
            "in": "header",
            "description": "`sha1 ` and the base64 of the piece's SHA-1: a piece that does not match is not kept (460).",
            "schema": {
             "type": "string"
            }
           },
           "PlaybackToken": {
            "name": "token",
            "in": "path",
            "required": true,
            "description": "`{expires}.{keyID}.{signature}`, as getPlayback signs it.",
            "schema": {
             "type": "string"
            }
           },
           "PlaybackPath": {
            "name": "path",
            "in": "path",
            "required": true,
            "schema": {
             "type": "string",
             "pattern": "^([A-Za-z0-9_-]{1,64}/)?[A-Za-z0-9_-]{1,64}\\.(m3u8|mp4|m4s|ts|vtt|jpg)$"
            }
           }
          },
          "responses": {
           "PlaybackFile": {
            "description": "The file, or the part of it the Range asked for.",
            "headers": {
             "ETag": {
              "schema": {
               "type": "string"
              }
             },
             "Cache-Control": {
              "schema": {
               "type": "string"
              }
             },
             "Accept-Ranges": {
              "schema": {
               "type": "string",
               "enum": [
                "bytes"
               ]
              }
             },
             "Content-Range": {
              "schema": {
               "type": "string"
              }
             }
            },
            "content": {
             "application/vnd.apple.mpegurl": {
              "schema": {
               "type": "string"
              }
             },
             "video/mp4": {
              "schema": {
               "type": "string",
               "format": "binary"
              }
             },
             "video/iso.segment": {
              "schema": {
               "type": "string",
               "format": "binary"
              }
             },
             "video/mp2t": {
              "schema": {
               "type": "string",
               "format": "binary"
              }
             },
             "text/vtt": {
              "schema": {
               "type": "string"
              }
             },
             "image/jpeg": {
              "schema": {
               "type": "string",
               "format": "binary"
              }
             }
            }
           },
           "Problem": {
            "description": "An RFC 9457 problem; `detail` says what to do.",
            "content": {
             "application/problem+json": {
              "schema": {
               "$ref": "#/components/schemas/Problem"
              }
             }
            }
           },
           "TooManyRequests": {
            "description": "The key is at its cap of jobs in flight or open uploads; `detail` says what frees room.",
            "headers": {
             "Retry-After": {
              "description": "Seconds to wait before asking again (a hint).",
              "schema": {
               "type": "string"
              }
             }
            },
            "content": {
             "application/problem+json": {
              "schema": {
               "$ref": "#/components/schemas/Problem"
              }
             }
            }
           }
          },
          "schemas": {
           "Status": {
            "type": "object",
            "required": [
             "status"
            ],
            "properties": {
             "status": {
              "type": "string"
             }
            }
           },
           "Problem": {
            "type": "object",
            "required": [
             "type",
             "title",
             "status",
             "detail"
            ],
            "properties": {
             "type": {
              "type": "string"
             },
             "title": {
              "type": "string"
             },
             "status": {
              "type": "integer"
             },
             "detail": {
              "type": "string"
             }
            }
           },
           "JobState": {
            "type": "string",
            "enum": [
             "submitted",
             "running",
             "stitching",
             "ready",
             "failed",
             "cancelled"
            ]
           },
           "JobRequest": {
            "type": "object",
            "additionalProperties": false,
            "description": "The video is exactly one of `source` and `upload`.",
            "properties": {
             "upload": {
              "type": "string",
              "description": "The id of the tenant's finished upload (`/v1/uploads`)."
             },
             "source": {
              "description": "Exactly one of `path` and `url`.",
              "oneOf": [
               {
                "type": "object",
                "additionalProperties": false,
                "required": [
                 "path"
                ],
                "properties": {
                 "path": {
                  "type": "string",
                  "description": "An absolute path inside one of the coordinator's source folders."
                 }
                }
               },
               {
                "type": "object",
                "additionalProperties": false,
                "required": [
                 "url"
                ],
                "properties": {
                 "url": {
                  "type": "string",
                  "maxLength": 2048,
                  "description": "An `https://` or `http://` URL the coordinator fetches the video from (up to the upload size\nlimit, 5 redirects). An address inside the coordinator's own networks (loopback, link-local,\nprivate) is refused with a 422 unless the operator allows it.\n"
                 }
                }
               }
              ]
             },
             "webhook": {
              "type": "object",
              "additionalProperties": false,
              "required": [
               "url",
               "secret"
              ],
              "description": "Where `job.ready` and `job.failed` are POSTed, signed with `secret` (header `Farm-Signature:\nt=<unix seconds>,v1=<hex HMAC-SHA256 of \"<t>.<body>\">`); retried with backoff for 24 hours.\n",
              "properties": {
               "url": {
                "type": "string",
                "maxLength": 2048
               },
               "secret": {
                "type": "string",
                "minLength": 16,
                "maxLength": 256
               }
              }
             },
             "metadata": {
              "type": "object",
              "description": "The client's own JSON object (at most 16 KiB), given back with the job."
             },
             "rungs": {
              "type": "array",
              "description": "Rung names (default the whole ladder, never above the source's height).",
              "items": {
               "type": "string",
               "enum": [
                "240p",
                "360p",
                "480p",
                "720p",
                "1080p",
                "1440p",
                "2160p"
               ]
              }
             },
             "preset": {
              "type": "string",
              "enum": [
               "ultrafast",
               "superfast",
               "veryfast",
               "faster",
               "fast",
               "medium",
               "slow",
               "slower",
               "veryslow"
              ],
              "default": "veryfast"
             },
             "crf": {
              "type": "integer",
              "minimum": 0,
              "maximum": 51,
              "default": 23
             },
             "bFrames": {
              "type": "integer",
              "minimum": 0,
              "maximum": 16,
              "description": "0 for none; fmp4 only"
             },
             "container": {
              "type": "string",
              "enum": [
               "fmp4",
               "ts"
              ],
              "default": "fmp4"
             },
             "segmentDuration": {
              "type": "number",
              "minimum": 1,
              "maximum": 60,
              "default": 6
             },
             "priority": {
              "type": "integer",
              "minimum": -1000,
              "maximum": 1000,
              "default": 0
             },
             "maxInFlight": {
              "type": "integer",
              "minimum": 0,
              "maximum": 1000000,
              "default": 0,
              "description": "0: no cap"
             }
            }
           },
           "Job": {
            "type": "object",
            "required": [
             "id",
             "state",
             "priority",
             "createdAt",
             "progress"
            ],
            "properties": {
             "id": {
              "type": "integer"
             },
             "state": {
              "$ref": "#/components/schemas/JobState"
             },
             "error": {
              "type": [
               "string",
               "null"
              ]
             },
             "priority": {
              "type": "integer"
             },
             "createdAt": {
              "type": "string",
              "format": "date-time"
             },
             "finishedAt": {
              "type": [
               "string",
               "null"
              ],
              "format": "date-time"
             },
             "durationSeconds": {
              "type": [
               "number",
               "null"
              ]
             },
             "progress": {
              "type": "object",
              "required": [
               "tasksTotal",
               "tasksDone",
               "percent"
              ],
              "properties": {
               "tasksTotal": {
                "type": "integer"
               },
               "tasksDone": {
                "type": "integer"
               },
               "percent": {
                "type": "number",
                "minimum": 0,
                "maximum": 100
               }
              }
             },
             "retryOf": {
              "type": [
               "integer",
               "null"
              ],
              "description": "The failed or cancelled job this one runs again."
             },
             "sourceURL": {
              "type": [
               "string",
               "null"
              ],
              "description": "The URL the source is fetched from."
             },
             "webhookURL": {
              "type": [
               "string",
               "null"
              ]
             },
             "metadata": {
              "type": [
               "object",
               "null"
              ],
              "description": "The client's own metadata, as it came."
             }
            }
           },
           "WebhookDeliveries": {
            "type": "object",
            "required": [
             "deliveries"
            ],
            "properties": {
             "deliveries": {
              "type": "array",
              "items": {
               "type": "object",
               "required": [
                "id",
                "event",
                "url",
                "state",
                "createdAt",
                "attempts"
               ],
               "properties": {
                "id": {
                 "type": "integer"
                },
                "event": {
                 "type": "string",
                 "enum": [
                  "job.ready",
                  "job.failed"
                 ]
                },
                "url": {
                 "type": "string"
                },
                "state": {
                 "type": "string",
                 "enum": [
                  "pending",
                  "delivered",
                  "failed"
                 ]
                },
                "createdAt": {
                 "type": "string",
                 "format": "date-time"
                },
                "nextAttemptAt": {
                 "type": [
                  "string",
                  "null"
                 ],
                 "format": "date-time"
                },
                "attempts": {
                 "type": "array",
                 "items": {
                  "type": "object",
                  "required": [
                   "attempt",
                   "startedAt",
                   "durationMs"
                  ],
                  "properties": {
                   "attempt": {
                    "type": "integer",
                    "minimum": 1
                   },
                   "startedAt": {
                    "type": "string",
                    "format": "date-time"
                   },
                   "durationMs": {
                    "type": "integer",
                    "minimum": 0
                   },
                   "status": {
                    "type": [
                     "integer",
                     "null"
                    ]
                   },
                   "error": {
                    "type": [
                     "string",
                     "null"
                    ]
                   },
                   "responseExcerpt": {
                    "type": [
                     "string",
                     "null"
                    ]
                   }
                  }
                 }
                }
               }
              }
             }
            }
           },
           "JobPage": {
            "type": "object",
            "required": [
             "jobs"
            ],
            "properties": {
             "jobs": {
              "type": "array",
              "items": {
               "$ref": "#/components/schemas/Job"
              }
             },
             "nextCursor": {
              "type": [
               "string",
               "null"
              ]
             }
            }
           },
           "Playback": {
            "type": "object",
            "required": [
             "url",
             "expiresAt"
            ],
            "properties": {
             "url": {
              "type": "string",
              "description": "Relative to the API's address: `/v1/jobs/{id}/hls/{token}/master.m3u8`."
             },
             "expiresAt": {
              "type": "string",
              "format": "date-time"
             }
            }
           }
          }
         }
        }
        """#
}
