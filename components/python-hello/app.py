"""A wasi:http component written in Python (built with componentize-py).

It stands for the large prebuilt components of other toolchains: the
interpreter and its heap snapshot make it ~18 MB with a big memory image.
"""

import sys

from componentize_py_types import Ok
from wit_world import exports
from wit_world.imports.types import (
    Fields,
    IncomingRequest,
    OutgoingBody,
    OutgoingResponse,
    ResponseOutparam,
)


class IncomingHandler(exports.IncomingHandler):
    def handle(self, request: IncomingRequest, response_out: ResponseOutparam) -> None:
        path = request.path_with_query() or "/"
        print(f"python handling {path}")
        response = OutgoingResponse(Fields.from_list([("content-type", b"text/plain")]))
        body = response.body()
        ResponseOutparam.set(response_out, Ok(response))
        version = f"{sys.version_info.major}.{sys.version_info.minor}"
        with body.write() as stream:
            stream.blocking_write_and_flush(f"Hello from Python {version}! path={path}\n".encode())
        OutgoingBody.finish(body, None)
