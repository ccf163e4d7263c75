"""Throughput and latency of mockstatus against a bare aiohttp hello-world, in one run (HTTP and HTTPS).

    python benchmarks/throughput.py [--duration 5] [--connections 64]

Uses wrk (`wrk -t1 -c64 -d5s --latency`), one server process each, on loopback.
The hello-world is measured before and after the mockstatus runs and averaged,
so the printed ratio compares figures from the same minutes on the same machine.
"""

from __future__ import annotations

import argparse
import re
import subprocess

from _common import ensure_wrk, free_port, start_hello_aiohttp, start_mockstatus, stop, wait_http

CASES = (
    ("/status/200", "/status/200", None),
    ("/status/204", "/status/204", None),
    ("/status/418 JSON", "/status/418", "Accept: application/json"),
    ("/status/200,503", "/status/200,503", None),
    ("?limit=1000000000/1h (passes)", "/status/200?limit=1000000000/1h", None),
    ("?limit=1/1h (all 429)", "/status/200?limit=1/1h", None),
)

_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0}


def _ms(text: str) -> float:
    number, unit = re.fullmatch(r"([0-9.]+)(us|ms|s)", text).groups()
    return float(number) * _UNITS[unit]


def wrk(binary: str, url: str, header: str | None, duration: int, connections: int) -> dict[str, float]:
    command = [binary, "-t1", f"-c{connections}", f"-d{duration}s", "--latency", url]
    if header:
        command[1:1] = ["-H", header]
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([0-9.]+)", output).group(1))
    p50 = _ms(re.search(r"\s50%\s+(\S+)", output).group(1))
    p99 = _ms(re.search(r"\s99%\s+(\S+)", output).group(1))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    return {"rps": rps, "p50": p50, "p99": p99, "non2xx": int(errors.group(1)) if errors else 0}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=5)
    parser.add_argument("--connections", type=int, default=64)
    args = parser.parse_args()
    binary = ensure_wrk()
    if binary is None:
        return 1

    hello, hello_port = start_hello_aiohttp()
    mock_port = free_port()
    https_port = free_port()
    mock = start_mockstatus(mock_port, "--https-port", str(https_port))
    try:
        wait_http(f"http://127.0.0.1:{mock_port}/__mockstatus/health")
        hello_url = f"http://127.0.0.1:{hello_port}/"
        baseline = [wrk(binary, hello_url, None, args.duration, args.connections)]
        results = []
        for label, path, header in CASES:
            results.append(
                (label, wrk(binary, f"http://127.0.0.1:{mock_port}{path}", header, args.duration, args.connections))
            )
        # The same reply over TLS (wrk does not verify the certificate; keep-alive,
        # so each connection's handshake is paid once).
        results.append(
            ("HTTPS /status/200", wrk(binary, f"https://127.0.0.1:{https_port}/status/200", None, args.duration, args.connections))
        )  # fmt: skip
        # Bare aiohttp handlers sending mockstatus's exact reply bytes: the rest of
        # the gap to hello-world is what the required headers cost on the wire.
        same = [
            ("aiohttp, same bytes as /status/200", wrk(binary, f"http://127.0.0.1:{hello_port}/same/200", None, args.duration, args.connections)),
            ("aiohttp, same bytes as 418 JSON", wrk(binary, f"http://127.0.0.1:{hello_port}/same/418-json", None, args.duration, args.connections)),
        ]  # fmt: skip
        baseline.append(wrk(binary, hello_url, None, args.duration, args.connections))
    finally:
        stop(hello)
        stop(mock)

    base_rps = sum(b["rps"] for b in baseline) / len(baseline)
    print(f"wrk -t1 -c{args.connections} -d{args.duration}s, loopback, one process each")
    print(f"{'target':<36}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'vs aiohttp':>12}")
    print(
        f"{'aiohttp hello-world':<36}{base_rps:>10.0f}{baseline[0]['p50']:>9.2f}{baseline[0]['p99']:>9.2f}{'100 %':>12}"
    )
    for label, result in results:
        ratio = 100 * result["rps"] / base_rps
        print(f"{label:<36}{result['rps']:>10.0f}{result['p50']:>9.2f}{result['p99']:>9.2f}{ratio:>10.0f} %")
    for label, result in same:
        ratio = 100 * result["rps"] / base_rps
        print(f"{label:<36}{result['rps']:>10.0f}{result['p50']:>9.2f}{result['p99']:>9.2f}{ratio:>10.0f} %")
    print(f"(hello-world before/after: {baseline[0]['rps']:.0f} / {baseline[1]['rps']:.0f} req/s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
