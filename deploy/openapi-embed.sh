#!/usr/bin/env bash
# Writes API/OpenAPIDocument+JSON.swift from docs/openapi.yaml: the coordinator serves the document as JSON at
# /openapi.json and carries it in its binary (no file to install beside it). Run after every change to the document;
# APIDocumentTests fails when the two differ. Needs python3 with PyYAML (deploy/python-env.sh has it).
#
#   deploy/openapi-embed.sh [PYTHON]
set -euo pipefail
cd "$(dirname "$0")/.."
python=${1:-${FARM_TEST_PYTHON:-python3}}
json=$("$python" -c 'import json, sys, yaml; print(json.dumps(yaml.safe_load(open("docs/openapi.yaml")), indent=1))')
case "$json" in *'"""#'*) echo "openapi-embed.sh: the document holds \"\"\"#, which the Swift literal cannot" >&2; exit 1 ;; esac
{
    echo '// Written by deploy/openapi-embed.sh from docs/openapi.yaml: edit the document, then run the script.'
    echo ''
    echo 'extension OpenAPIDocument {'
    echo '    static let text = #"""'
    printf '%s\n' "$json" | sed 's/^/        /'
    echo '        """#'
    echo '}'
} >API/OpenAPIDocument+JSON.swift
echo "wrote API/OpenAPIDocument+JSON.swift" >&2
