"""Uploads a file to a farm coordinator with tuspy, the tus project's Python client, in two runs.

    tus_upload.py start  BASE KEY FILE STORE SETTINGS   uploads half the file with tuspy; sends a piece by hand
                                                      and drops the connection after a quarter of it, prints
                                                      "KEPT <offset before> <offset after>"; starts another such
                                                      piece, prints "MIDWAY <offset>" and waits for a line on
                                                      stdin (the test kills the coordinator meanwhile)
    tus_upload.py resume BASE KEY FILE STORE SETTINGS   a new tuspy uploader finds the upload in STORE, asks the
                                                      server where it stands, and sends the rest; prints "DONE <url>"

BASE is the coordinator's HTTP address (http://127.0.0.1:PORT), KEY an API key, STORE tuspy's URL storage file,
SETTINGS the job's settings as JSON (the upload's farm-settings metadata).
"""

import socket
import sys
import time
import urllib.parse

from tusclient import client
from tusclient.storage import filestorage

CHUNK = 1 << 20


def uploader(base, key, path, store, settings):
    tus = client.TusClient(base + "/v1/uploads", headers={"Authorization": "Bearer " + key})
    return tus.uploader(
        path,
        chunk_size=CHUNK,
        metadata={"farm-settings": settings, "filename": "source.mp4"},
        store_url=True,
        url_storage=filestorage.FileStorage(store),
        upload_checksum=True,
    )


def partial_patch(upload, key, path):
    """Starts a PATCH at the upload's offset announcing 4 MiB and sends 1 MiB of it; returns the open socket."""
    url = urllib.parse.urlsplit(upload.url)
    with open(path, "rb") as source:
        source.seek(upload.offset)
        piece = source.read(CHUNK)
    connection = socket.create_connection((url.hostname, url.port))
    connection.sendall(
        (
            f"PATCH {url.path} HTTP/1.1\r\nHost: {url.netloc}\r\nAuthorization: Bearer {key}\r\n"
            f"Tus-Resumable: 1.0.0\r\nContent-Type: application/offset+octet-stream\r\n"
            f"Upload-Offset: {upload.offset}\r\nContent-Length: {4 * CHUNK}\r\n\r\n"
        ).encode()
        + piece
    )
    return connection


def start(base, key, path, store, settings):
    upload = uploader(base, key, path, store, settings)
    size = upload.get_file_size()
    upload.upload(stop_at=size // 2)
    # A PATCH whose connection breaks after 1 MiB of its 4: the server keeps the 1 MiB it stored.
    before = upload.offset
    partial_patch(upload, key, path).close()
    deadline = time.monotonic() + 10
    while upload.get_offset() == before and time.monotonic() < deadline:
        time.sleep(0.1)
    upload.offset = upload.get_offset()
    print(f"KEPT {before} {upload.offset}", flush=True)
    # Another such PATCH, left open: the test kills the coordinator while it waits for the rest.
    connection = partial_patch(upload, key, path)
    print(f"MIDWAY {upload.offset}", flush=True)
    sys.stdin.readline()
    connection.close()


def resume(base, key, path, store, settings):
    upload = uploader(base, key, path, store, settings)
    upload.upload()
    print(f"DONE {upload.url}", flush=True)


if __name__ == "__main__":
    {"start": start, "resume": resume}[sys.argv[1]](*sys.argv[2:7])
