"""The path beyond one machine: a real Chroma server (``chroma run``) on loopback.

The core ingest/search/ask tests run against both backends (``on_both_stores`` in
test_ingest.py, test_desk.py, test_answer.py); here is what only a server has: the URL, a
token header, tenant and database, and a server that goes away and comes back.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest

from assistant.desk import Desk
from assistant.errors import ConfigError, StoreError
from assistant.index.store import Store
from assistant.settings import load_settings
from assistant.surfaces.cli import main
from ingest.pipeline import ingest_paths
from tests.chroma_server import ChromaServer, HeaderProxy, running_server
from tests.conftest import EXAMPLES, RememberingMiniLM

WIRE = str(EXAMPLES / "wire.jsonl")  # three short articles: cheap to embed
FED = "When did the Fed raise interest rates?"


def _direct(server: ChromaServer, **where: str) -> Any:
    """A chromadb client of the server itself, past newsdesk (to look at what it stored)."""
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    return chromadb.HttpClient(
        host="127.0.0.1",
        port=server.port,
        settings=ChromaSettings(anonymized_telemetry=False),
        **where,
    )


def _admin(server: ChromaServer) -> Any:
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    return chromadb.AdminClient(
        ChromaSettings(
            chroma_api_impl="chromadb.api.fastapi.FastAPI",
            chroma_server_host="127.0.0.1",
            chroma_server_http_port=server.port,
            anonymized_telemetry=False,
        )
    )


def _names(client: Any) -> set[str]:
    return {c.name for c in client.list_collections()}


# -- settings (no server needed) ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("ftp://chroma.test", "'ftp://chroma.test' is not an http:// or https:// URL"),
        ("chroma.test:8000", "'chroma.test:8000' is not an http:// or https:// URL"),
        ("http://", "'http://' has no host"),
        ("http://chroma.test:99999", "'http://chroma.test:99999' has an invalid port"),
        ("https://chroma.test/?tenant=x", "has a query or fragment"),
        ("http://me:pw@chroma.test", "'http://***@chroma.test' carries credentials"),
    ],
)
def test_a_bad_chroma_url_is_one_line_naming_it(url: str, says: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(chroma_url=url)
    message = str(info.value)
    assert "\n" not in message and "NEWSDESK_CHROMA_URL" in message
    assert says in message
    assert "pw" not in message


def test_server_settings_describe_the_store_without_the_token() -> None:
    import chromadb

    embedded = load_settings()
    assert not embedded.uses_chroma_server and embedded.chroma_server_url is None
    assert (embedded.chroma_tenant, embedded.chroma_database) == (
        chromadb.DEFAULT_TENANT,
        chromadb.DEFAULT_DATABASE,
    )

    hosted = load_settings(
        chroma_url="https://chroma.example.test/db/",
        chroma_token="tok-123",
        chroma_auth_header="x-chroma-token",
        chroma_tenant="newsroom",
        chroma_database="archive",
    )
    assert hosted.uses_chroma_server and hosted.chroma_auth_header == "X-Chroma-Token"
    assert hosted.describe_store() == (
        "chroma server https://chroma.example.test/db (tenant newsroom, database archive)"
    )
    assert "tok-123" not in repr(hosted) + hosted.describe_store()

    legacy = load_settings(chroma_host="10.0.0.5", chroma_port=8123)
    assert legacy.uses_chroma_server and legacy.chroma_server_url == "http://10.0.0.5:8123"

    with pytest.raises(ConfigError, match="both NEWSDESK_CHROMA_URL and NEWSDESK_CHROMA_HOST"):
        load_settings(chroma_url="http://a.test", chroma_host="b.test")


# -- a real server -------------------------------------------------------------------------------


def test_the_older_host_and_port_still_reach_the_server(
    chroma_server: ChromaServer, tmp_path: Path, remembering_embedder: RememberingMiniLM
) -> None:
    collection = chroma_server.new_collection()["collection"]
    settings = load_settings(
        home=tmp_path / "home",
        chroma_host="127.0.0.1",
        chroma_port=chroma_server.port,
        collection=collection,
    )
    store = Store(settings, remembering_embedder)
    report = ingest_paths([WIRE], settings, store=store)
    assert report.added == 3 and store.count() == report.chunks
    assert not (tmp_path / "home" / "chroma").exists()  # vectors live on the server
    assert collection in _names(_direct(chroma_server))
    answer = Desk(settings, store=store).answer(FED)
    assert answer.citations[0].passage.doc_id == "wire-fed-2022-03-16"


def test_url_token_tenant_and_database_from_the_environment(
    chroma_server: ChromaServer,
    tmp_path: Path,
    remembering_embedder: RememberingMiniLM,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``chroma run`` cannot check a token, so a proxy that refuses requests without the
    header stands in for the authenticating gateway (tests/chroma_server.py)."""
    tenant, database = f"desk-{uuid.uuid4().hex[:8]}", "archive"
    admin = _admin(chroma_server)
    admin.create_tenant(tenant)
    admin.create_database(database, tenant=tenant)
    token = f"tok-{uuid.uuid4().hex}"
    bearer = ("Authorization", f"Bearer {token}")
    with HeaderProxy(chroma_server.port, bearer, prefix="/chroma") as proxy:
        monkeypatch.setenv("NEWSDESK_CHROMA_URL", proxy.url)  # http://127.0.0.1:N/chroma
        monkeypatch.setenv("NEWSDESK_CHROMA_TOKEN", token)
        monkeypatch.setenv("NEWSDESK_CHROMA_TENANT", tenant)
        monkeypatch.setenv("NEWSDESK_CHROMA_DATABASE", database)
        settings = load_settings()
        store = Store(settings, remembering_embedder)
        assert ingest_paths([WIRE], settings, store=store).added == 3
        with Desk(settings, store=store) as desk:
            assert desk.answer(FED).citations[0].passage.doc_id == "wire-fed-2022-03-16"
            stats = desk.stats()
        assert proxy.passed and proxy.refused == []
        assert stats.store == (f"chroma server {proxy.url} (tenant {tenant}, database {database})")
        assert token not in stats.model_dump_json()
        # stored in that tenant and database, not in the server's default ones
        assert "news" in _names(_direct(chroma_server, tenant=tenant, database=database))
        assert "news" not in _names(_direct(chroma_server))

        # the other header form, as the gateway now wants it
        proxy.expect = ("X-Chroma-Token", token)
        monkeypatch.setenv("NEWSDESK_CHROMA_AUTH_HEADER", "X-Chroma-Token")
        assert Store(load_settings(), remembering_embedder).count() == stats.chunks

        # refused (the old header, then a wrong token): one line naming the URL, no token
        refused = len(proxy.refused)
        with pytest.raises(StoreError) as info:
            store.count()
        monkeypatch.setenv("NEWSDESK_CHROMA_TOKEN", "wrong-token")
        with pytest.raises(StoreError) as fresh:
            Store(load_settings(), remembering_embedder).count()
        assert len(proxy.refused) > refused
        for message in (str(info.value), str(fresh.value)):
            assert "\n" not in message and proxy.url in message, message
            assert token not in message and "wrong-token" not in message, message


def test_an_unknown_tenant_or_database_is_one_line_and_never_created(
    chroma_server: ChromaServer,
    tmp_path: Path,
    remembering_embedder: RememberingMiniLM,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    missing_tenant = load_settings(chroma_url=chroma_server.url, chroma_tenant="no-such-tenant")
    with pytest.raises(StoreError) as info:
        Store(missing_tenant, remembering_embedder).count()
    message = str(info.value)
    assert "\n" not in message and chroma_server.url in message
    assert "Tenant [no-such-tenant] not found" in message and "does not create" in message

    monkeypatch.setenv("NEWSDESK_CHROMA_URL", chroma_server.url)
    monkeypatch.setenv("NEWSDESK_CHROMA_DATABASE", "no-such-db")
    assert main(["stats"]) == 1
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Database [no-such-db] not found" in err, err
    assert "database no-such-db" in err and "Traceback" not in err

    admin = _admin(chroma_server)
    with pytest.raises(Exception, match="no-such-tenant"):
        admin.get_tenant("no-such-tenant")
    with pytest.raises(Exception, match="no-such-db"):
        admin.get_database("no-such-db")


def test_a_server_that_goes_away_is_one_line_and_the_same_desk_answers_after_restart(
    tmp_path: Path, remembering_embedder: RememberingMiniLM
) -> None:
    server = running_server(tmp_path)  # its own: stopping the session's would hit others
    try:
        settings = load_settings(home=tmp_path / "home", chroma_url=server.url)
        ingest_paths([WIRE], settings, store=Store(settings, remembering_embedder))
        desk = Desk(settings, store=Store(settings, remembering_embedder))
        before = [p.chunk_id for p in desk.search("Fed interest rates")]
        assert before

        server.stop()
        for call in (lambda: desk.search("Fed interest rates"), lambda: desk.answer(FED)):
            with pytest.raises(StoreError) as info:
                call()
            message = str(info.value)
            assert "\n" not in message and server.url in message, message

        server.start()
        assert [p.chunk_id for p in desk.search("Fed interest rates")] == before
        assert desk.answer(FED).citations[0].passage.doc_id == "wire-fed-2022-03-16"
    finally:
        server.stop()


def test_an_ingest_from_another_machine_is_caught_up_reading_only_what_changed(
    chroma_server: ChromaServer, tmp_path: Path, remembering_embedder: RememberingMiniLM,
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    """Two data homes (the service host and an analyst's laptop) on one Chroma collection: the
    service's lexical index is brought level with what the laptop ingested, one document read."""
    where = chroma_server.new_collection()
    service = load_settings(home=tmp_path / "service", **where)
    laptop = load_settings(home=tmp_path / "laptop", **where)
    ingest_paths([WIRE], service, store=Store(service, remembering_embedder))
    desk = Desk(service, store=Store(service, remembering_embedder))
    assert desk.search(FED, k=1)[0].doc_id == "wire-fed-2022-03-16"

    extra = tmp_path / "new" / "ferry.md"
    extra.parent.mkdir()
    extra.write_text(
        "---\ntitle: Calverin ferry gets two new berths\nsource: Harbor Line News\n"
        "published: 2022-03-20\n---\nThe Calverin ferry terminal opened two new berths on "
        "Sunday, the port authority said.\n"
    )
    ingest_paths([WIRE, str(extra.parent)], laptop, store=Store(laptop, remembering_embedder))
    read: list[str] = []
    real = Store.doc_chunks

    def counting(self: Store, doc_ids: Any) -> Any:
        read.extend(doc_ids)
        return real(self, doc_ids)

    monkeypatch.setattr(Store, "doc_chunks", counting)
    with caplog.at_level("WARNING"):
        hits = desk.search("Calverin ferry berths", k=1)
    assert hits and hits[0].title == "Calverin ferry gets two new berths"
    assert hits[0].lexical > 0  # found by BM25 too: the service's lexical index holds it
    assert len(read) == 1  # only the new article was read from Chroma
    assert any("bringing the BM25 index level" in r.getMessage() for r in caplog.records)
