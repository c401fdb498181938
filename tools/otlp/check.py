"""Proves the trace export end to end: an OTLP/HTTP receiver built on the official protobuf
definitions, the real binary serving the demo with the standard OTEL_* variables pointing at it,
and a GraphQL request carrying a W3C traceparent. The spans must arrive under the caller's trace
id, the request's span a child of the caller's span, the case it opened a child of the request.

    python tools/otlp/check.py [--binary target/debug/pledgeflow]
"""

import argparse
import http.server
import json
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.trace.v1.trace_pb2 import Span

RECEIVED = []  # (resource attributes, span) pairs
LOCK = threading.Lock()


class Receiver(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if self.path != "/v1/traces" or self.headers.get("Content-Type") != "application/x-protobuf":
            self.send_error(404 if self.path != "/v1/traces" else 415)
            return
        request = ExportTraceServiceRequest()
        request.ParseFromString(body)
        with LOCK:
            for rs in request.resource_spans:
                resource = {a.key: a.value.string_value for a in rs.resource.attributes}
                for ss in rs.scope_spans:
                    for span in ss.spans:
                        RECEIVED.append((resource, span))
        answer = ExportTraceServiceResponse().SerializeToString()
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args):
        pass


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def attributes(span):
    out = {}
    for a in span.attributes:
        v = a.value
        out[a.key] = v.string_value or (v.int_value if v.HasField("int_value") else v.bool_value)
    return out


def fail(message):
    print(f"otlp check: FAILED: {message}", file=sys.stderr)
    sys.exit(1)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--binary", default="target/debug/pledgeflow")
    args = parser.parse_args()
    binary = os.path.abspath(args.binary)

    receiver = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), Receiver)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    collector = f"http://127.0.0.1:{receiver.server_address[1]}"

    work = tempfile.mkdtemp(prefix="pledgeflow-otlp-")
    port = free_port()
    env = dict(os.environ)
    for k in [k for k in env if k.startswith(("PLEDGEFLOW_", "OTEL_"))]:
        del env[k]
    env.update({
        "PLEDGEFLOW_DATABASE_URL": f"sqlite://{work}/otlp.db",
        "PLEDGEFLOW_DATA_DIR": f"{work}/data",
        "PLEDGEFLOW_LISTEN": f"127.0.0.1:{port}",
    })
    traced = dict(env, OTEL_EXPORTER_OTLP_ENDPOINT=collector, OTEL_BSP_SCHEDULE_DELAY="200", OTEL_RESOURCE_ATTRIBUTES="deployment.environment=ci")
    log = open(f"{work}/serve.log", "w")
    server = subprocess.Popen([binary, "serve", "--demo"], env=traced, stdout=log, stderr=log)
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(600):
            try:
                with urllib.request.urlopen(f"{base}/readyz", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                time.sleep(0.1)
        else:
            fail(f"the server did not become ready; its log: {work}/serve.log")
        token = subprocess.run([binary, "token", "--subject", "window-01", "--role", "window"], env=env, check=True, capture_output=True, text=True).stdout.strip()

        trace_id = secrets.token_hex(16)
        caller_span = secrets.token_hex(8)
        query = (
            'mutation Intake { openCase(input: {applicantUscc: "91310110666007217T", itemCode: "310101-FOOD-01", mode: DEFERRAL, '
            'deferralWorkingDays: 5, signedBy: "张伟", materials: [{code: "M01", status: PROVIDED, fileRef: "DOC-1"}, '
            '{code: "M02", status: DEFERRED}, {code: "M03", status: PROVIDED, fileRef: "DOC-3"}]}) { case { id } } }'
        )
        request = urllib.request.Request(
            f"{base}/graphql",
            data=json.dumps({"query": query, "operationName": "Intake"}).encode(),
            headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}", "traceparent": f"00-{trace_id}-{caller_span}-01"},
        )
        with urllib.request.urlopen(request, timeout=10) as r:
            answer = json.load(r)
            request_id = r.headers["x-request-id"]
        if answer.get("errors") or not answer["data"]["openCase"]["case"]["id"]:
            fail(f"openCase answered {answer}")
        case_id = answer["data"]["openCase"]["case"]["id"]

        deadline = time.time() + 20
        ours = []
        while time.time() < deadline:
            with LOCK:
                ours = [(res, s) for res, s in RECEIVED if s.trace_id.hex() == trace_id]
            if any(s.name == "start" for _, s in ours) and any(s.name == "graphql Intake" for _, s in ours):
                break
            time.sleep(0.2)
        names = sorted({s.name for _, s in RECEIVED})
        request_spans = [(res, s) for res, s in ours if s.name == "graphql Intake"]
        if not request_spans:
            fail(f"no span 'graphql Intake' under trace {trace_id}; received span names: {names}")
        resource, graphql = request_spans[0]
        if resource.get("service.name") != "pledgeflow" or resource.get("deployment.environment") != "ci":
            fail(f"resource attributes: {resource}")
        if graphql.parent_span_id.hex() != caller_span:
            fail(f"the request's span has parent {graphql.parent_span_id.hex()}, not the caller's {caller_span}")
        if graphql.kind != Span.SPAN_KIND_SERVER:
            fail(f"the request's span is of kind {graphql.kind}, not SERVER")
        attrs = attributes(graphql)
        expected = {"operation": "Intake", "actor": "window-01", "request_id": request_id}
        for k, v in expected.items():
            if attrs.get(k) != v:
                fail(f"attribute {k} is {attrs.get(k)!r}, expected {v!r}; all: {attrs}")
        starts = [s for _, s in ours if s.name == "start"]
        if not starts:
            fail(f"no 'start' span under the request; spans of the trace: {[s.name for _, s in ours]}")
        start = starts[0]
        if start.parent_span_id != graphql.span_id:
            fail("the case's 'start' span is not a child of the request's span")
        if attributes(start).get("workflow") != "material-deferral":
            fail(f"'start' attributes: {attributes(start)}")
        # Spans of other traces (the demo's seeding, the sweep) are their own roots: none claims our trace.
        print(f"otlp check: ok — trace {trace_id}: {len(ours)} spans ({sorted({s.name for _, s in ours})}), case {case_id}, request {request_id}")
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
        receiver.shutdown()


if __name__ == "__main__":
    main()
