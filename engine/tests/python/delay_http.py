"""The HTTP handler of the tasklet-socket tests, standard library only, so
that the same code serves in the shard's interpreter (tasklet_servers.py:
one tasklet per connection) and, run as a script by a stock
/usr/bin/python3.11, as the peer server (a thread per connection).

It answers GET /...?delay=S after sleeping S seconds (time.sleep: a tasklet
sleep in the shard, a thread sleep in the stock process) with the request
path as its body.

As a script: `python3.11 delay_http.py [CERTFILE KEYFILE]` serves on an
ephemeral port of 127.0.0.1 (HTTPS with the pair) and prints the port.
"""

import http.server
import ssl
import sys
import time
import urllib.parse


class DelayHandler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
        time.sleep(float(query.get("delay", ["0"])[0]))
        body = self.path.encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class _ThreadingServer(http.server.ThreadingHTTPServer):
    request_queue_size = 256


def main(argv):
    server = _ThreadingServer(("127.0.0.1", 0), DelayHandler)
    if len(argv) > 1:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(argv[1], argv[2])
        server.socket = context.wrap_socket(server.socket, server_side=True)
    print(server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main(sys.argv)
