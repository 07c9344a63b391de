"""T-UP-3: hostile XML is refused fast, in bounded memory, without touching the network.

Every attack runs against the C-CDA importer and against the generic helpers every XML
importer must use (``refuse_entities`` + ``xml_parser()``), in a subprocess per target capped
with RLIMIT_AS, while a local HTTP server counts any fetch; and again through the real
import pipeline, which must leave the store unchanged.
"""

from __future__ import annotations

import http.server
import json
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from healthspace.sources.pipeline import import_paths
from healthspace.store import SpaceSession, Store
from tests.store.test_records import logical_dump

MEMORY_LIMIT = 512 << 20  # RLIMIT_AS for the parsing subprocess
PEAK_RSS_BOUND = 256 << 20  # the interpreter and imports take about 100 MB of it
ROOT_OPEN = '<ClinicalDocument xmlns="urn:hl7-org:v3">'
ROOT_CLOSE = "</ClinicalDocument>"
REMOTE_ENTITY_TEXT = "FETCHED-FROM-THE-NETWORK"


def _lol(levels: int = 10, fan_out: int = 10) -> str:
    entities = ['<!ENTITY lol0 "lol">']
    for level in range(1, levels):
        entities.append(f'<!ENTITY lol{level} "{f"&lol{level - 1};" * fan_out}">')
    return "".join(entities)


def billion_laughs(base: str) -> bytes:
    doc = f"<?xml version='1.0'?><!DOCTYPE ClinicalDocument [{_lol()}]>"
    return (doc + ROOT_OPEN + "&lol9;" + ROOT_CLOSE).encode()


def billion_laughs_after_padding(base: str) -> bytes:
    # The DTD starts beyond the first 64 KiB, past a head-only check for "<!ENTITY".
    padding = "<!--" + "x" * 70_000 + "-->"
    doc = f"<?xml version='1.0'?>{padding}<!DOCTYPE ClinicalDocument [{_lol()}]>"
    return (doc + ROOT_OPEN + "&lol9;" + ROOT_CLOSE).encode()


def quadratic_blowup(base: str) -> bytes:
    entity = "x" * 30_000  # 3 GB once expanded; the DTD still fits in the sniffed head
    doc = f"<?xml version='1.0'?><!DOCTYPE ClinicalDocument [<!ENTITY a \"{entity}\">]>"
    return (doc + ROOT_OPEN + "&a;" * 100_000 + ROOT_CLOSE).encode()


def external_entity_file(base: str) -> bytes:
    doc = (
        '<?xml version="1.0"?><!DOCTYPE ClinicalDocument [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
    )
    return (doc + ROOT_OPEN + "&x;" + ROOT_CLOSE).encode()


def external_entity_http(base: str) -> bytes:
    url = f"{base}/entity"
    doc = f'<?xml version="1.0"?><!DOCTYPE ClinicalDocument [<!ENTITY x SYSTEM "{url}">]>'
    return (doc + ROOT_OPEN + "&x;" + ROOT_CLOSE).encode()


def external_dtd(base: str) -> bytes:
    url = f"{base}/evil.dtd"
    doc = f'<?xml version="1.0"?><!DOCTYPE ClinicalDocument SYSTEM "{url}">'
    return (doc + ROOT_OPEN + "&x;" + ROOT_CLOSE).encode()


def parameter_entity(base: str) -> bytes:
    url = f"{base}/parameter.dtd"
    subset = (
        f'<!ENTITY % remote SYSTEM "{url}"> %remote; <!ENTITY % local "<!ENTITY y \'z\'>"> %local;'
    )
    doc = f'<?xml version="1.0"?><!DOCTYPE ClinicalDocument [{subset}]>'
    return (doc + ROOT_OPEN + "&x;&y;" + ROOT_CLOSE).encode()


def deep_nesting(base: str) -> bytes:
    return (ROOT_OPEN + "<a>" * 100_000 + "</a>" * 100_000 + ROOT_CLOSE).encode()


ATTACKS: dict[str, Callable[[str], bytes]] = {
    f.__name__: f
    for f in (
        billion_laughs,
        billion_laughs_after_padding,
        quadratic_blowup,
        external_entity_file,
        external_entity_http,
        external_dtd,
        parameter_entity,
        deep_nesting,
    )
}
# The generic helpers refuse entity declarations in the head outright; what they cannot
# see (a bare external DTD reference) they parse without fetching or expanding anything.
GENERIC_OUTCOME = dict.fromkeys(ATTACKS, "refused") | {"external_dtd": "parsed"}


class _Counter(http.server.BaseHTTPRequestHandler):
    hits: list[str]

    def do_GET(self) -> None:
        self.hits.append(self.path)
        body = f'<!ENTITY x "{REMOTE_ENTITY_TEXT}">'.encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        return


_CHILD = r"""
import json, resource, sys, time
limit = int(sys.argv[2])
resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
from lxml import etree
from healthspace.errors import SourceError
from healthspace.sources._safety import refuse_entities, xml_parser

target, paths = sys.argv[1], sys.argv[3:]
if target == "ccda":
    from healthspace.sources.base import ImportContext, InputFile
    from healthspace.sources.ccda import CcdaSource
results = {}
for path in paths:
    with open(path, "rb") as fh:
        data = fh.read()
    out = {}
    start = time.perf_counter()
    try:
        if target == "ccda":
            file = InputFile.from_bytes(data, path)
            ctx = ImportContext(file=file, file_sha256="0" * 64)
            out["items"] = len(list(CcdaSource().parse(file, ctx)))
            out["outcome"] = "parsed"
        else:
            refuse_entities(path, data[:65536])
            try:
                root = etree.fromstring(data, xml_parser())
            except etree.XMLSyntaxError:
                raise SourceError("XML is not well-formed", file=path) from None
            out["outcome"] = "parsed"
            out["text"] = "".join(root.itertext())
    except SourceError as exc:
        out["outcome"] = "refused"
        out["error"] = str(exc)
        out["file"] = exc.file
    except Exception as exc:  # MemoryError under the rlimit, or anything unexpected
        out["outcome"] = "crashed: " + type(exc).__name__
    out["seconds"] = time.perf_counter() - start
    # VmHWM only grows: after each attack it bounds that attack's peak too. Not
    # ru_maxrss: Linux carries that over exec from the (large) pytest parent.
    with open("/proc/self/status") as status:
        hwm = next(line for line in status if line.startswith("VmHWM:"))
    out["peak_rss_kb"] = int(hwm.split()[1])
    results[path] = out
print(json.dumps(results))
"""


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[int, list[str]]]:
    """A local HTTP server that records every request it gets."""
    hits: list[str] = []
    handler = type("Handler", (_Counter,), {"hits": hits})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield httpd.server_address[1], hits
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


@pytest.fixture(scope="module")
def attack_files(
    server: tuple[int, list[str]], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("attacks")
    files = {}
    for name, build in ATTACKS.items():
        files[name] = folder / f"{name}.xml"
        files[name].write_bytes(build(f"http://127.0.0.1:{server[0]}/{name}"))
    return files


@pytest.fixture(scope="module")
def outcomes(attack_files: dict[str, Path]) -> dict[str, dict[str, dict[str, object]]]:
    """Every attack parsed by each target, in one RLIMIT_AS-capped subprocess per target."""
    found: dict[str, dict[str, dict[str, object]]] = {}
    for target in ("ccda", "xml_parser"):
        paths = [str(p) for p in attack_files.values()]
        res = subprocess.run(
            [sys.executable, "-c", _CHILD, target, str(MEMORY_LIMIT), *paths],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert res.returncode == 0, res.stderr[-2000:]
        by_path = json.loads(res.stdout)
        found[target] = {name: by_path[str(path)] for name, path in attack_files.items()}
    return found


@pytest.mark.parametrize("target", ["ccda", "xml_parser"])
@pytest.mark.parametrize("attack", sorted(ATTACKS))
def test_attack_is_refused_in_bounded_time_and_memory(
    attack: str,
    target: str,
    outcomes: dict[str, dict[str, dict[str, object]]],
    attack_files: dict[str, Path],
    server: tuple[int, list[str]],
) -> None:
    result = outcomes[target][attack]
    path = str(attack_files[attack])
    expected = "refused" if target == "ccda" else GENERIC_OUTCOME[attack]
    assert result["outcome"] == expected, result
    if expected == "refused":
        assert result["file"] == path
        assert path in str(result["error"])
    else:
        # Parsed, but nothing was fetched or expanded.
        text = str(result["text"])
        assert REMOTE_ENTITY_TEXT not in text
        assert "root:" not in text
        assert len(text) < 1000
    assert isinstance(result["seconds"], float)
    assert result["seconds"] < 5.0  # refused in well under a second; the bound is generous
    assert isinstance(result["peak_rss_kb"], int)
    assert result["peak_rss_kb"] * 1024 < PEAK_RSS_BOUND
    assert [hit for hit in server[1] if hit.startswith(f"/{attack}/")] == []


@pytest.mark.parametrize("attack", sorted(ATTACKS))
def test_attack_through_the_pipeline_leaves_the_store_unchanged(
    attack: str,
    attack_files: dict[str, Path],
    server: tuple[int, list[str]],
    store: Store,
    health: SpaceSession,
) -> None:
    path = attack_files[attack]
    before = logical_dump(store)
    started = time.perf_counter()
    report = import_paths(health, [path])
    elapsed = time.perf_counter() - started
    assert report.imported == {}
    assert len(report.errors) == 1
    assert str(path) in report.errors[0]
    # Recognised as C-CDA and refused with a reason; a root beyond the sniffed head
    # leaves it unrecognised, which refuses it too.
    expected_source = None if attack == "billion_laughs_after_padding" else "ccda"
    assert report.files[0].source == expected_source
    assert elapsed < 5.0
    assert logical_dump(store) == before
    assert [hit for hit in server[1] if hit.startswith(f"/{attack}/")] == []
