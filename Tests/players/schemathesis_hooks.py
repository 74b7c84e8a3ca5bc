"""Schemathesis hooks for the farm's API: tus pieces (application/offset+octet-stream) are sent as raw bytes."""

import schemathesis


@schemathesis.serializer("application/offset+octet-stream")
def offset_octet_stream(ctx, value):
    if isinstance(value, bytes):
        return value
    return str(value).encode()
