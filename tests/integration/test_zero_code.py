"""Zero-code mode as people run it: beside opentelemetry-distro, with several workers
(uvicorn --workers, gunicorn), with an OTLP collector, and with the usual mistakes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from processes import start_group, stop_group

SHOP = "otel_monitoring.demo.shop:app"
BIN = Path(sys.executable).parent
INSTRUMENT = str(BIN / "opentelemetry-instrument")
#: Emulates an environment without opentelemetry-distro (ours are then the only ones).
OURS_ONLY = {"OTEL_PYTHON_DISTRO": "otel_monitoring", "OTEL_PYTHON_CONFIGURATOR": "otel_monitoring"}
#: The documented distro setup sends everything over OTLP/gRPC to localhost by default.
NO_EXPORT = {"OTEL_TRACES_EXPORTER": "none", "OTEL_METRICS_EXPORTER": "none"}


def _eventually(check: Callable[[], object], timeout_s: float = 60.0) -> None:
    """Poll ``check`` (it asserts, with the value seen) until it passes; bounded."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            check()
            return
        except (AssertionError, httpx.TransportError) as exc:
            if time.monotonic() >= deadline:
                raise AssertionError(f"not reached within {timeout_s} s: {exc}") from None
        time.sleep(0.2)


def _get(url: str) -> httpx.Response:
    # A new connection each time, so requests spread over the workers.
    return httpx.get(url, headers={"Connection": "close"}, timeout=10)


def _totals_reach(api: str, sent: int) -> None:
    def exact() -> None:
        total = _get(api + "/monitoring/health").json()["total_requests"]
        assert total == sent, f"sent {sent}, the side port counts {total}"

    _eventually(exact)


def _no_span_towards(receiver: Any, requests: int) -> None:
    """Once the ``requests`` server spans arrived, no exported span is a request to the
    receiver (the exporters' own traffic)."""
    from otlp_receiver import attributes

    def served() -> int:
        return sum(1 for s in receiver.spans() if attributes(s.attributes).get("http.route"))

    assert receiver.wait_for(lambda: served() >= requests), receiver.spans()
    spans = receiver.spans()
    towards = [s.name for s in spans if str(receiver.port) in str(attributes(s.attributes))]
    assert towards == [], f"spans of the exporters' own requests: {towards}"


def _env(shop_env: dict[str, str], api_port: int, **extra: str) -> dict[str, str]:
    return {
        **shop_env,
        "OTEL_MONITORING_PORT": str(api_port),
        "OTEL_LOGS_EXPORTER": "none",
        **extra,
    }


def test_beside_opentelemetry_distro_with_no_extra_variable(
    start_server: Callable[..., Any],
    port: int,
    shop_env: dict[str, str],
    uvicorn_cmd: Any,
    another_port: Callable[[], int],
) -> None:
    """OTel's documented setup (distro + OTLP exporter installed, OTLP over HTTP to a
    collector): its configurator is the one chosen, and monitoring is on all the same; the
    exporters' own requests are neither traced nor counted as the app's outbound calls."""
    from otlp_receiver import OtlpReceiver, attributes

    receiver = OtlpReceiver()
    try:
        api_port = another_port()
        env = _env(
            shop_env,
            api_port,
            OTEL_EXPORTER_OTLP_ENDPOINT=receiver.endpoint,
            OTEL_EXPORTER_OTLP_PROTOCOL="http/protobuf",
            OTEL_METRIC_EXPORT_INTERVAL="500",
        )
        server = start_server(uvicorn_cmd(SHOP, port, INSTRUMENT), env, port)
        api = f"http://127.0.0.1:{api_port}"
        for i in range(1, 8):
            response = _get(f"{server.url}/items/{i}")
            assert response.status_code == 200
            assert response.headers["server-timing"].startswith("app;dur=")
        _totals_reach(api, 7)
        assert f"otel-monitoring: monitoring API on {api}/monitoring/" in server.output()
        # metric exports happen every 500 ms: let a few go out, then look
        assert receiver.wait_for(lambda: len(receiver.metrics) >= 3)
        assert _get(api + "/monitoring/external").json() == []
        _no_span_towards(receiver, 7)
        routes = {attributes(s.attributes).get("http.route") for s in receiver.spans()}
        assert routes == {None, "/items/{item_id}"}  # None: the DB and ASGI-internal spans
    finally:
        receiver.close()


def _metrics(request: Any, name: str | None = None) -> list[Any]:
    """The metrics of an OTLP export request (of one name, if given)."""
    return [
        metric
        for rm in request.resource_metrics
        for sm in rm.scope_metrics
        for metric in sm.metrics
        if name is None or metric.name == name
    ]


CUMULATIVE = {"OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE": "cumulative"}


@pytest.mark.parametrize(
    "extra",
    [{}, OURS_ONLY, {**OURS_ONLY, **CUMULATIVE}],
    ids=["distro", "ours-only", "ours-only-cumulative"],
)
def test_a_coarse_export_interval_keeps_the_finest_buckets_and_merges_exports(
    extra: dict[str, str],
    start_server: Callable[..., Any],
    port: int,
    shop_env: dict[str, str],
    uvicorn_cmd: Any,
    another_port: Callable[[], int],
) -> None:
    """``OTEL_METRIC_EXPORT_INTERVAL`` coarser than the finest buckets (here 3 s against
    1-s buckets; 60 s against 10 s in production): the store is still fed every bucket, so
    the finest chart is not one clump per export, while the backend gets one point per
    stream and export, with every request counted. Beside the distro its reader exports
    (cumulative); with ours alone, ours does (delta, merged; totals when
    ``OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE=cumulative``)."""
    from otlp_receiver import OtlpReceiver, attributes

    receiver = OtlpReceiver()
    try:
        api_port = another_port()
        shop_env = {k: v for k, v in shop_env.items() if k != "OTEL_MONITORING_INTERVAL"}
        env = _env(
            shop_env,
            api_port,
            OTEL_EXPORTER_OTLP_ENDPOINT=receiver.endpoint,
            OTEL_EXPORTER_OTLP_PROTOCOL="http/protobuf",
            OTEL_METRIC_EXPORT_INTERVAL="3000",
            OTEL_MONITORING_RESOLUTION="1s",
            OTEL_TRACES_EXPORTER="none",
            **extra,
        )
        argv = [a for a in uvicorn_cmd(SHOP, port, INSTRUMENT) if a != "--no-access-log"]
        server = start_server(argv, env, port)
        api = f"http://127.0.0.1:{api_port}"
        sent, started = 24, time.monotonic()
        for i in range(sent):  # 6 s, no API call meanwhile (it would collect on demand)
            assert _get(f"{server.url}/items/{i % 5 + 1}").status_code == 200
            time.sleep(max(0.0, started + 0.25 * (i + 1) - time.monotonic()))
        time.sleep(1.5)
        chart = _get(
            api + "/monitoring/timeseries/throughput?window=1m&route=/items/{item_id}"
            "&method=GET&anomalies=false"
        ).json()
        assert chart["step_s"] == 1.0, chart
        seconds = [p for p in chart["points"] if p["value"]]
        # requests collected each second: 6-7 seconds with requests (one a 3-s collection
        # would make 2-3 clumps)
        assert len(seconds) >= 5, chart["points"]
        elapsed = time.monotonic() - started
        assert len(receiver.metrics) <= elapsed / 3 + 1, (elapsed, len(receiver.metrics))
        stop_group(server.proc, timeout_s=20)

        def exported() -> int:
            """Requests the backend was told of: the sum of delta points (ours), the last
            cumulative one (the distro's reader)."""
            total = 0
            for request in list(receiver.metrics):
                for metric in _metrics(request, "http.server.request.duration"):
                    data = getattr(metric, metric.WhichOneof("data"))
                    count = sum(
                        p.count
                        for p in data.data_points
                        if attributes(p.attributes).get("http.route") == "/items/{item_id}"
                    )
                    total = total + count if data.aggregation_temporality == 1 else count
            return total

        assert receiver.wait_for(lambda: exported() >= sent, timeout_s=20), (
            exported(),
            server.output()[-3000:],
        )
        if extra:  # ours: delta points (or totals, as asked), one per stream and export
            expected = 2 if extra.keys() & CUMULATIVE.keys() else 1
            assert {
                getattr(m, m.WhichOneof("data")).aggregation_temporality
                for r in receiver.metrics
                for m in _metrics(r, "http.server.request.duration")
            } == {expected}
        assert exported() == sent, (exported(), server.output()[-3000:])
        # the app server's own logs are left as they were (the side port's uvicorn once
        # reconfigured the process's uvicorn loggers: no access log, no info lines)
        assert '"GET /items/1 HTTP/1.1" 200' in server.output(), server.output()[-3000:]
        assert "Application shutdown complete" in server.output()
        assert "/monitoring/timeseries" not in server.output()  # the side port's requests
        for request in receiver.metrics:  # one point per stream in each export
            for metric in _metrics(request):
                points = getattr(metric, metric.WhichOneof("data")).data_points
                keys = [repr(sorted(attributes(p.attributes).items())) for p in points]
                assert len(keys) == len(set(keys)), metric.name
    finally:
        receiver.close()


def test_a_sigterm_right_after_the_requests_loses_none_of_them(
    start_server: Callable[..., Any],
    port: int,
    shop_env: dict[str, str],
    uvicorn_cmd: Any,
    another_port: Callable[[], int],
    tmp_path: Path,
) -> None:
    """Stopped as Kubernetes, systemd and Docker stop it (SIGTERM) a moment after its last
    requests, before any periodic collection: the store file holds them all. (uvicorn
    re-raises the SIGTERM once the app has stopped, so exit handlers never run: the
    requests since the last collection were lost.)"""
    store = tmp_path / "monitor.db"
    shop_env = {k: v for k, v in shop_env.items() if k != "OTEL_MONITORING_INTERVAL"}
    env = _env(
        shop_env,
        another_port(),
        **NO_EXPORT,
        OTEL_MONITORING_STORE=f"sqlite:///{store}",
        OTEL_MONITORING_INTERVAL="60s",  # collections every 10 s
    )
    server = start_server(uvicorn_cmd(SHOP, port, INSTRUMENT), env, port)
    for i in range(1, 6):
        assert _get(f"{server.url}/items/{i}").status_code == 200
    stop_group(server.proc, timeout_s=20)
    assert "Application shutdown complete" in server.output()
    api_port, app_port = another_port(), another_port()
    restarted = {**env, "OTEL_MONITORING_PORT": str(api_port)}
    again = start_server(uvicorn_cmd(SHOP, app_port, INSTRUMENT), restarted, app_port)
    health = _get(f"http://127.0.0.1:{api_port}/monitoring/health").json()
    assert health["total_requests"] == 5, (health, again.output()[-2000:])


def test_own_configurator_exports_without_tracing_the_exporter(
    start_server: Callable[..., Any],
    port: int,
    shop_env: dict[str, str],
    uvicorn_cmd: Any,
    another_port: Callable[[], int],
) -> None:
    """Without the distro: our reader's OTLP metric POSTs are not outbound calls or spans."""
    from otlp_receiver import OtlpReceiver

    receiver = OtlpReceiver()
    try:
        api_port = another_port()
        env = _env(shop_env, api_port, OTEL_EXPORTER_OTLP_ENDPOINT=receiver.endpoint, **OURS_ONLY)
        server = start_server(uvicorn_cmd(SHOP, port, INSTRUMENT), env, port)
        api = f"http://127.0.0.1:{api_port}"
        # Delta temporality: a batch goes out when there is something new. Before, the
        # exporter's own POST was counted as outbound and exported in turn (and so on).
        for sent in (1, 2):
            assert _get(f"{server.url}/items/{sent}").status_code == 200

            def exported(sent: int = sent) -> bool:
                points = receiver.metric_points("http.server.request.duration")
                return sum(p.count for p in points) >= sent

            assert receiver.wait_for(exported), receiver.metrics
        _totals_reach(api, 2)
        assert _get(api + "/monitoring/external").json() == []
        assert receiver.metric_points("http.client.request.duration") == []
        _no_span_towards(receiver, 2)
    finally:
        receiver.close()


def _start_workers(
    server_kind: str, port: int, env: dict[str, str], tmp_path: Path
) -> tuple[subprocess.Popen[bytes], Path]:
    """Start a two-worker server of ``server_kind`` (output in ``tmp_path / server.log``)."""
    # the shop seeds its database on import: once here, not by two forked workers at once
    seed = "from otel_monitoring.demo.shop import create_engine_for; create_engine_for()"
    subprocess.run([sys.executable, "-c", seed], env=env, check=True, timeout=120)
    log = tmp_path / "server.log"
    with log.open("wb") as out:
        proc = start_group(
            _workers_argv(server_kind, port), env=env, stdout=out, stderr=subprocess.STDOUT
        )
    return proc, log


def _both_workers_serve(
    proc: subprocess.Popen[bytes], base: str, log: Path
) -> tuple[set[int], int]:
    """Send ``/whoami`` until both workers have answered (bounded): the pids that did, and
    how many requests that took."""
    pids: set[int] = set()
    sent = 0

    def both() -> None:
        nonlocal sent
        for _ in range(10):
            assert proc.poll() is None, log.read_text()
            pids.add(_get(base + "/whoami").json()["pid"])
            sent += 1
        assert len(pids) == 2, f"workers answering so far: {pids}"

    try:
        _eventually(both, timeout_s=90)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{log.read_text()}") from None
    return pids, sent


def _workers_argv(server_kind: str, port: int) -> list[str]:
    if server_kind == "uvicorn":
        argv = [str(BIN / "uvicorn"), SHOP, "--host", "127.0.0.1", "--port", str(port)]
        # a loaded CI machine takes more than the default 5 s to start a worker
        slow = ["--timeout-worker-healthcheck", "60"]
        return [INSTRUMENT, *argv, "--workers", "2", "--no-access-log", *slow]
    gunicorn = [str(BIN / "gunicorn"), "-w", "2", "-k", "uvicorn.workers.UvicornWorker"]
    if server_kind == "gunicorn-preload":  # the arbiter imports the app before forking
        gunicorn.append("--preload")
    return [INSTRUMENT, *gunicorn, "-b", f"127.0.0.1:{port}", SHOP]


@pytest.mark.parametrize(
    ("configurator", "server_kind"),
    [
        ("distro", "uvicorn"),
        ("ours", "uvicorn"),
        ("distro", "gunicorn"),
        ("ours", "gunicorn"),
        # not with ours and its Prometheus reader: under --preload the arbiter serves
        # /metrics, with none of the workers' series (docs/configuration.md)
        ("distro", "gunicorn-preload"),
    ],
)
def test_several_workers_give_exact_totals_on_the_side_port(
    server_kind: str,
    configurator: str,
    port: int,
    shop_env: dict[str, str],
    another_port: Callable[[], int],
    tmp_path: Path,
) -> None:
    """No extra configuration: the side port answers with the requests of all workers; the
    Prometheus port breaks no worker; the runtime folder goes when the server stops.

    ``gunicorn --preload``: the arbiter imports the app, so the monitor, its side server and
    its threads start there, and then it forks the workers. The arbiter takes the workers'
    shared store, which they inherit (its side port counted none of their requests). A worker
    forked while the side server's thread was importing uvicorn's protocol modules waited
    forever on that import's lock when its own uvicorn imported them, and never served: seen
    in four runs in a row by hand, once the monitor's at-fork work made the fork a little
    later, then not again once the byte code was written (a race); the side server's start
    now waits until its server has started.

    (OTel's own configurator with ``OTEL_METRICS_EXPORTER=prometheus`` binds the port in the
    supervising process, which no code of ours can change: a line at start says to select
    ours, see :func:`test_prometheus_under_otel_configurator_says_what_to_set`.)"""
    api_port, prometheus_port = another_port(), another_port()
    env = {
        **os.environ,
        **_env(shop_env, api_port, **NO_EXPORT),
        "XDG_RUNTIME_DIR": str(tmp_path),
        "PYTHONUNBUFFERED": "1",
    }
    if configurator == "ours":
        # and with Prometheus: one worker serves /metrics, none fails on the port
        env.update(
            OURS_ONLY,
            OTEL_METRICS_EXPORTER="prometheus",
            OTEL_EXPORTER_PROMETHEUS_HOST="127.0.0.1",
            OTEL_EXPORTER_PROMETHEUS_PORT=str(prometheus_port),
        )
    proc, log = _start_workers(server_kind, port, env, tmp_path)
    try:
        base, api = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{api_port}"
        pids, sent = _both_workers_serve(proc, base, log)
        for i in range(1, 41):
            assert _get(f"{base}/items/{i % 7 + 1}").status_code == 200
            sent += 1
        try:
            _totals_reach(api, sent)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{log.read_text()}") from None
        assert proc.pid not in pids
        folders = list(tmp_path.glob(f"otel-monitoring-{os.getuid()}-{proc.pid}"))
        assert len(folders) == 1, list(tmp_path.iterdir())
        if configurator == "ours":
            assert (
                "http_server_request_duration"
                in _get(f"http://127.0.0.1:{prometheus_port}/metrics").text
            )
    finally:
        stop_group(proc)
    assert not folders[0].exists(), "the runtime folder is removed when the server stops"
    output = log.read_text()
    assert "Traceback" not in output, output


@pytest.mark.parametrize("server_kind", ["uvicorn", "gunicorn"])
def test_several_workers_stopped_by_sigterm_keep_every_request(
    server_kind: str,
    port: int,
    shop_env: dict[str, str],
    another_port: Callable[[], int],
    tmp_path: Path,
    start_server: Callable[..., Any],
    uvicorn_cmd: Any,
) -> None:
    """Two workers sharing a store file, stopped (SIGTERM to the supervisor, which passes
    it on) right after their last requests: a restarted server counts every request of
    both workers."""
    store = tmp_path / "monitor.db"
    shop_env = {k: v for k, v in shop_env.items() if k != "OTEL_MONITORING_INTERVAL"}
    env = {
        **os.environ,
        **_env(shop_env, another_port(), **NO_EXPORT),
        "OTEL_MONITORING_STORE": f"sqlite:///{store}",
        "OTEL_MONITORING_INTERVAL": "60s",  # no periodic collection before the stop
        "PYTHONUNBUFFERED": "1",
    }
    proc, log = _start_workers(server_kind, port, env, tmp_path)
    try:
        base = f"http://127.0.0.1:{port}"
        _, sent = _both_workers_serve(proc, base, log)
        for i in range(1, 21):
            assert _get(f"{base}/items/{i % 7 + 1}").status_code == 200
            sent += 1
    finally:
        stop_group(proc, timeout_s=30)
    output = log.read_text()
    assert "Traceback" not in output, output
    api_port, app_port = another_port(), another_port()
    restarted = {**env, "OTEL_MONITORING_PORT": str(api_port)}
    start_server(uvicorn_cmd(SHOP, app_port, INSTRUMENT), restarted, app_port)
    health = _get(f"http://127.0.0.1:{api_port}/monitoring/health").json()
    assert health["total_requests"] == sent, (sent, health, output[-3000:])


def test_grpc_without_the_grpc_exporter_keeps_local_statistics(
    start_server: Callable[..., Any],
    port: int,
    shop_env: dict[str, str],
    uvicorn_cmd: Any,
    another_port: Callable[[], int],
    tmp_path: Path,
) -> None:
    """grpcio missing (a stand-in package that fails to import as it would): one line naming
    the extra, and the monitoring API answers with the local statistics."""
    missing = tmp_path / "no_grpc"
    (missing / "grpc").mkdir(parents=True)
    (missing / "grpc" / "__init__.py").write_text(
        "raise ModuleNotFoundError(\"No module named 'grpc'\", name='grpc')\n"
    )
    api_port = another_port()
    env = _env(
        shop_env,
        api_port,
        OTEL_EXPORTER_OTLP_PROTOCOL="grpc",
        OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:4317",
        PYTHONPATH=str(missing),
        **OURS_ONLY,
    )
    server = start_server(uvicorn_cmd(SHOP, port, INSTRUMENT), env, port)
    api = f"http://127.0.0.1:{api_port}"
    for i in range(1, 4):
        assert _get(f"{server.url}/items/{i}").status_code == 200
    _totals_reach(api, 3)
    output = server.output()
    assert output.count("pip install 'otel-monitoring[grpc]'") == 1, output
    assert "Traceback" not in output and "OTEL_TRACES_EXPORTER" not in output, output


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ({"OTEL_SDK_DISABLED": "true"}, "otel-monitoring: off, because OTEL_SDK_DISABLED=true"),
        (
            {"OTEL_MONITORING_INTERVALL": "1s"},
            "unknown environment variable OTEL_MONITORING_INTERVALL; did you mean"
            " OTEL_MONITORING_INTERVAL?",
        ),
    ],
)
def test_monitoring_off_says_why_in_one_line(
    extra: dict[str, str],
    expected: str,
    start_server: Callable[..., Any],
    port: int,
    shop_env: dict[str, str],
    uvicorn_cmd: Any,
    another_port: Callable[[], int],
) -> None:
    api_port = another_port()
    env = _env(shop_env, api_port, **NO_EXPORT, **extra)
    server = start_server(uvicorn_cmd(SHOP, port, INSTRUMENT), env, port)
    assert _get(server.url + "/items/1").status_code == 200
    with pytest.raises(httpx.ConnectError):
        _get(f"http://127.0.0.1:{api_port}/monitoring/health")
    output = server.output()
    assert output.count(expected) == 1, output
    assert "Traceback" not in output, output


def test_prometheus_under_otel_configurator_says_what_to_set(
    port: int, shop_env: dict[str, str], another_port: Callable[[], int], tmp_path: Path
) -> None:
    """The one combination that cannot work (OTel's configurator serving Prometheus from the
    uvicorn supervisor, so each worker's start fails on the port): the supervisor says, in
    one line, which variable to set."""
    env = {
        **os.environ,
        **_env(shop_env, another_port()),
        "OTEL_TRACES_EXPORTER": "none",
        "OTEL_METRICS_EXPORTER": "prometheus",
        "OTEL_EXPORTER_PROMETHEUS_PORT": str(another_port()),
        # OTel's own configurator, whichever of the two installed ones its loader meets first
        "OTEL_PYTHON_CONFIGURATOR": "configurator",
    }
    log = tmp_path / "server.log"
    with log.open("wb") as out:
        proc = start_group(
            _workers_argv("uvicorn", port),
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=tmp_path,
        )
    try:
        expected = "set OTEL_PYTHON_CONFIGURATOR=otel_monitoring"

        def said() -> None:
            assert expected in log.read_text(), log.read_text()

        _eventually(said)
    finally:
        stop_group(proc)
    assert log.read_text().count(expected) == 1


def test_the_side_port_outlives_the_worker_that_held_it(
    port: int, shop_env: dict[str, str], another_port: Callable[[], int], tmp_path: Path
) -> None:
    """The worker serving the side port dies (SIGKILL): the other worker takes the port."""
    api_port = another_port()
    env = {
        **os.environ,
        **_env(shop_env, api_port, **NO_EXPORT, **OURS_ONLY),
        "XDG_RUNTIME_DIR": str(tmp_path),
        "PYTHONUNBUFFERED": "1",
    }
    log = tmp_path / "server.log"
    with log.open("wb") as out:
        proc = start_group(
            _workers_argv("uvicorn", port), env=env, stdout=out, stderr=subprocess.STDOUT
        )
    api = f"http://127.0.0.1:{api_port}"
    line = f"otel-monitoring: monitoring API on {api}/monitoring/ (process "

    def holders() -> list[int]:
        text = log.read_text()
        return [int(part.split(")")[0]) for part in text.split(line)[1:]]

    try:

        def first_holder() -> None:
            assert _get(api + "/monitoring/health").status_code == 200
            assert len(holders()) == 1, log.read_text()

        _eventually(first_holder, timeout_s=90)
        (holder,) = holders()
        os.kill(holder, signal.SIGKILL)

        def taken_over() -> None:
            assert len(holders()) == 2, log.read_text()
            assert _get(api + "/monitoring/health").status_code == 200

        _eventually(taken_over, timeout_s=90)
        assert holders()[1] != holder
    finally:
        stop_group(proc)
