"""Runs schemathesis against a coordinator's /openapi.json with a valid key, every operation given real data.

usage: schemathesis_run.py API_URL KEY SOURCE_PATH WORK_FOLDER

Makes a job (from SOURCE_PATH, inside the coordinator's source folder) and an upload first, so the operations
on /v1/jobs/{id} and /v1/uploads/{id} reach past their 404s; then runs schemathesis with the checks that matter
here (no server error, every response as the document says) and exits with its status.
"""

import json
import os
import subprocess
import sys
import urllib.request

api, key, source, work = sys.argv[1:5]
auth = {"Authorization": "Bearer " + key}


def call(method, path, body=None, headers=None):
    request = urllib.request.Request(api + path, data=body, method=method, headers={**auth, **(headers or {})})
    with urllib.request.urlopen(request) as response:
        return response.status, dict(response.headers), response.read()


_, _, job = call("POST", "/v1/jobs", json.dumps({"source": {"path": source}}).encode(),
                 {"Content-Type": "application/json"})
job_id = json.loads(job)["id"]
_, headers, _ = call("POST", "/v1/uploads", b"", {"Tus-Resumable": "1.0.0", "Upload-Length": "1000"})
upload_id = headers["Location"].rstrip("/").split("/")[-1]

config = os.path.join(work, "schemathesis.toml")
with open(config, "w") as out:
    out.write(f"""
[[operations]]
include-path-regex = "^/v1/jobs/"
parameters = {{ "path.id" = {job_id} }}

[[operations]]
include-path-regex = "^/v1/uploads/"
parameters = {{ "path.id" = "{upload_id}" }}
""")
environment = dict(os.environ, SCHEMATHESIS_HOOKS="schemathesis_hooks",
                   PYTHONPATH=os.path.dirname(os.path.abspath(__file__)))
command = [
    os.path.join(os.path.dirname(sys.executable), "schemathesis"), "--config-file", config, "run",
    api + "/openapi.json", "-H", "Authorization: Bearer " + key,
    "--checks", "not_a_server_error,response_schema_conformance", "--max-examples", "15", "--seed", "7400",
]
print(" ".join(command), flush=True)
sys.exit(subprocess.call(command, env=environment, cwd=work))
