"""A stand-in for one kube-apiserver behind the VIP: HTTPS on an address, /readyz and the host's name.

Run in a control-plane host's network namespace by tests/controlplane/test_api_vip.py:
`python api_stub.py NAME ADDRESS PORT CERT KEY FLAG`. GET /readyz answers 200 while the file FLAG
does not exist and 500 once it does (an API server that is up but not ready: HAProxy's check must take
it out of rotation); GET / answers NAME, so a client can tell which server it reached.
"""

from __future__ import annotations

import http.server
import ssl
import sys
from pathlib import Path


def main(name: str, address: str, port: str, cert: str, key: str, flag: str) -> None:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path.startswith("/readyz"):
                ready = not Path(flag).exists()
                body, code = (b"ok", 200) if ready else (b"not ready", 500)
            else:
                body, code = name.encode(), 200
            self.send_response(code)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_: object) -> None:
            pass

    class Server(http.server.ThreadingHTTPServer):
        def handle_error(self, *_: object) -> None:
            pass  # HAProxy's checks hang up without a TLS close_notify: not an error here

    server = Server((address, int(port)), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    server.serve_forever()


if __name__ == "__main__":
    main(*sys.argv[1:7])
