"""The HTTP API through FastAPI's test client: answers shaped like the CLI's --json rows, every
bad input a 4xx with a message, the token, and writes by another process seen at once."""

import json
import subprocess
import sys

import pytest
from fastapi.testclient import TestClient

from semsearch import Engine
from semsearch.documents import Document
from semsearch.server import create_app
from semsearch.server.app import MAX_BODY_BYTES, MAX_QUERY_CHARS, MAX_RESULTS

from conftest import HashingEmbedder

#: the address tests send requests to (a tokenless server answers only loopback names)
LOCAL = "http://localhost"

PAPERS = [
    Document("2301.00001", "Graph attention networks", "Attention over graph neighbourhoods. "
             "Nodes weigh their neighbours.",
             {"year": 2018, "authors": ["Petar Velickovic"], "categories": ["cs.LG"]}),
    Document("2301.00002", "Attention is all you need", "The transformer uses attention only. "
             "It translates well.",
             {"year": 2017, "authors": ["Ashish Vaswani"], "categories": ["cs.CL"]}),
    Document("hep-th/9901001", "Strings on a lattice", "Lattice strings and their spectra.",
             {"year": 1999, "categories": ["hep-th"]}),
    Document("bert", "BERT", "Pretraining deep bidirectional transformers for language.",
             {"year": 2019, "categories": ["cs.CL"]}),
]


@pytest.fixture(scope="module")
def index_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("server") / "idx"
    Engine(path, embedder=HashingEmbedder()).build(PAPERS)
    return path


@pytest.fixture(scope="module")
def client(index_path):
    with TestClient(create_app(Engine.open(index_path, embedder=HashingEmbedder())),
                    base_url=LOCAL) as client:
        yield client


def test_search_answers_rows_shaped_like_the_cli_json(client):
    answer = client.get("/api/search", params={"q": "attention transformer", "k": 2})
    assert answer.status_code == 200
    rows = answer.json()["results"]
    assert len(rows) == 2
    assert {"rank", "id", "title", "score", "link", "abstract", "year"} <= set(rows[0])
    assert rows[0]["rank"] == 1 and rows[0]["link"].startswith("https://arxiv.org/abs/")


def test_search_takes_filters_mode_and_explain(client):
    rows = client.get("/api/search", params={"q": "attention", "mode": "lexical",
                                             "year": "2018..2020", "explain": "true"}
                      ).json()["results"]
    assert [row["id"] for row in rows] == ["2301.00001"]
    assert rows[0]["explain"]["matched_terms"]
    rows = client.get("/api/search", params=[("q", "attention"), ("category", "cs.CL"),
                                             ("category", "cs.LG")]).json()["results"]
    assert {row["id"] for row in rows} == {"2301.00001", "2301.00002", "bert"}


def test_like_leaves_out_the_papers_given(client):
    answer = client.post("/api/like", json={"ids": ["2301.00002"], "not": ["hep-th/9901001"],
                                            "k": 5})
    assert answer.status_code == 200, answer.text
    ids = [row["id"] for row in answer.json()["results"]]
    assert ids and "2301.00002" not in ids and "hep-th/9901001" not in ids


def test_one_paper_by_id_even_with_a_slash(client):
    paper = client.get("/api/papers/hep-th/9901001").json()
    assert paper["title"] == "Strings on a lattice" and paper["abstract"].startswith("Lattice")
    assert client.get("/api/papers/bert").json()["year"] == 2019


def test_info_and_facets(client):
    info = client.get("/api/info").json()
    assert info["count"] == 4 and info["model"] == "test-hashing-embedder"
    facets = client.get("/api/facets").json()
    assert [f["value"] for f in facets["year"]] == ["1999", "2017", "2018", "2019"]
    assert facets["category"][0] == {"value": "cs.CL", "count": 2}
    authors = client.get("/api/facets", params={"kind": "author"}).json()
    assert set(authors) == {"author"}


@pytest.mark.parametrize("params, status, says", [
    ({"q": "x", "k": 0}, 422, "k"),
    ({"q": "x", "k": -3}, 422, "k"),
    ({"q": "x", "k": MAX_RESULTS + 1}, 422, "k"),
    ({"q": "x", "k": "ten"}, 422, "k"),
    ({"q": ""}, 422, "q"),
    ({}, 422, "q"),
    ({"q": "   "}, 400, "empty"),
    ({"q": "x" * (MAX_QUERY_CHARS + 1)}, 422, "q"),
    ({"q": "x", "mode": "psychic"}, 422, "mode"),
    ({"q": "x", "year": "last year"}, 400, "--year"),
    ({"q": "x", "year": "2020..2010"}, 400, "ends before it starts"),
    ({"q": "x", "author": "!!!"}, 400, "no letters"),
    ({"q": "x", "category": "astro-ph"}, 400, "no paper"),
])
def test_bad_search_input_is_a_4xx_with_a_message(client, params, status, says):
    answer = client.get("/api/search", params=params)
    assert answer.status_code == status, answer.text
    assert says in answer.json()["error"]


def test_a_long_query_goes_in_a_body_and_a_100kb_one_is_refused(client):
    abstract = PAPERS[0].abstract * 40
    answer = client.post("/api/search", json={"q": abstract, "k": 2})
    assert answer.status_code == 200 and answer.json()["results"][0]["id"] == "2301.00001"
    answer = client.post("/api/search", json={"q": "x" * 100_000})
    assert answer.status_code == 413 and "body" in answer.json()["error"]


@pytest.mark.parametrize("body, status, says", [
    ({"ids": []}, 422, "ids"),
    ({"ids": ["no-such-paper"]}, 404, "no paper"),
    ({"ids": ["bert"], "not": ["bert"]}, 400, "both liked and not liked"),
    ({"ids": ["bert"], "k": 10_000}, 422, "k"),
    ({"ids": ["bert"], "colour": "red"}, 422, "colour"),
    ({"ids": ["x"] * 51}, 422, "ids"),
    ("not json", 422, "JSON"),
])
def test_bad_like_input_is_a_4xx_with_a_message(client, body, status, says):
    if isinstance(body, str):
        answer = client.post("/api/like", content=body,
                             headers={"content-type": "application/json"})
    else:
        answer = client.post("/api/like", json=body)
    assert answer.status_code == status, answer.text
    assert says in answer.json()["error"]


def test_unknown_paper_and_address_are_404_json(client):
    for address in ("/api/papers/nothing-here", "/api/nothing", "/etc/passwd",
                    "/docs/../../etc/passwd", "/page.js/../../secret"):
        answer = client.get(address)
        assert answer.status_code == 404, address
        assert answer.json()["error"]


def test_a_body_over_the_bound_is_refused(client):
    answer = client.post("/api/like", content=b"x" * (MAX_BODY_BYTES + 1),
                         headers={"content-type": "application/json"})
    assert answer.status_code == 413 and "body" in answer.json()["error"]


def test_a_failure_inside_is_json_without_a_traceback(index_path, monkeypatch):
    engine = Engine.open(index_path, embedder=HashingEmbedder())
    monkeypatch.setattr(engine, "search", lambda *a, **k: 1 / 0)
    with TestClient(create_app(engine), raise_server_exceptions=False, base_url=LOCAL) as client:
        answer = client.get("/api/search", params={"q": "attention"})
    assert answer.status_code == 500
    assert answer.json() == {"error": "the server failed on this request "
                                      "(ZeroDivisionError); its log says more"}


def test_with_a_token_every_request_must_carry_it(index_path):
    token = "s3cret-token-0123456789"
    app = create_app(Engine.open(index_path, embedder=HashingEmbedder()), token=token)
    with TestClient(app, base_url=LOCAL) as client:
        for headers in ({}, {"authorization": "Bearer wrong-token-0123456789"}):
            for address in ("/", "/api/search?q=attention", "/openapi.json", "/page.js"):
                answer = client.get(address, headers=headers)
                assert answer.status_code == 401 and "token" in answer.json()["error"]
        good = client.get("/api/search?q=attention",
                          headers={"authorization": f"Bearer {token}"})
        assert good.status_code == 200
        # the page opened with ?token= gets a cookie its own requests then carry
        page = client.get(f"/?token={token}")
        assert page.status_code == 200 and "semsearch" in page.text
        assert client.get("/api/info").status_code == 200
    with TestClient(app, base_url=LOCAL) as fresh:
        assert fresh.get("/api/info").status_code == 401


def test_the_page_and_the_docs_are_served_without_anything_from_elsewhere(client):
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    for address in ("/page.js", "/page.css", "/docs", "/docs/swagger-ui-bundle.js",
                    "/docs/swagger-ui.css", "/openapi.json"):
        answer = client.get(address)
        assert answer.status_code == 200, address
    for text in (page.text, client.get("/docs").text, client.get("/page.js").text):
        assert "http://" not in text.replace("http://www.w3.org", "") and "https://" not in text


def test_a_write_by_another_process_is_seen_by_the_next_request(client, index_path, tmp_path):
    before = client.get("/api/info").json()["count"]
    paper = {"id": "2405.99999", "title": "Quantum error correction with lattice surgery",
             "abstract": "Surface codes merged by lattice surgery.", "year": 2024}
    (tmp_path / "new.jsonl").write_text(json.dumps(paper) + "\n")
    code = ("import sys; sys.path.insert(0, 'tests'); from conftest import HashingEmbedder; "
            "from semsearch import Engine, read_documents; "
            f"Engine({str(index_path)!r}, embedder=HashingEmbedder())"
            f".add(read_documents([{str(tmp_path / 'new.jsonl')!r}]))")
    subprocess.run([sys.executable, "-c", code], check=True)
    assert client.get("/api/info").json()["count"] == before + 1
    assert client.get("/api/papers/2405.99999").status_code == 200
    rows = client.get("/api/search", params={"q": "lattice surgery", "mode": "lexical"}
                      ).json()["results"]
    assert rows[0]["id"] == "2405.99999"
    assert "2024" in [f["value"] for f in client.get("/api/facets").json()["year"]]


ROUNDS = 25
WRITER = """
import sys
sys.path.insert(0, 'tests')
from conftest import HashingEmbedder
from semsearch import Engine
from semsearch.documents import Document
engine = Engine({path!r}, embedder=HashingEmbedder())
for round in range({rounds}):
    papers = [Document(f"churn-{{round}}-{{i}}", f"Attention study {{round}} {{i}}",
                       "Attention over graphs and transformers, again.") for i in range(5)]
    engine.add(papers)
    engine.remove([paper.id for paper in papers])
"""


def test_searches_while_another_process_writes_all_answer(index_path):
    """Adds, removes and the merges they cause, committed by another process while requests
    keep coming: every request is answered from a whole state."""
    app = create_app(Engine.open(index_path, embedder=HashingEmbedder()))
    writer = subprocess.Popen([sys.executable, "-c", WRITER.format(path=str(index_path),
                                                                    rounds=ROUNDS)])
    statuses, answered = [], 0
    with TestClient(app, raise_server_exceptions=False, base_url=LOCAL) as client:
        while writer.poll() is None or answered < 20:
            for params in ({"q": "attention graphs"},
                           {"q": "attention transformers", "mode": "dense"}):
                answer = client.get("/api/search", params={**params, "k": 20})
                statuses.append((answer.status_code, answer.text[:300]))
                answered += 1
    assert writer.returncode == 0
    assert [s for s in statuses if s[0] != 200] == []
    assert answered > 20


# -- what a hostile page or client can do ---------------------------------------------------------

@pytest.mark.parametrize("host, status", [
    ("localhost:8000", 200), ("127.0.0.1:8000", 200), ("[::1]:8000", 200), ("LOCALHOST", 200),
    ("evil.example:8000", 403), ("127.0.0.1.nip.io", 403), ("", 403)])
def test_a_tokenless_server_answers_only_requests_addressed_to_a_loopback_name(index_path, host,
                                                                               status):
    """DNS rebinding: a page on a domain its owner points at 127.0.0.1 sends that domain as
    the host; it must not read the collection."""
    app = create_app(Engine.open(index_path, embedder=HashingEmbedder()))
    with TestClient(app, base_url=LOCAL) as client:
        answer = client.get("/api/search", params={"q": "attention"}, headers={"host": host})
    assert answer.status_code == status
    if status == 403:
        assert "localhost" in answer.json()["error"]


def test_with_a_token_or_opened_on_purpose_any_host_name_is_answered(index_path):
    engine = Engine.open(index_path, embedder=HashingEmbedder())
    token = "t" * 20
    for app, headers in ((create_app(engine, token=token), {"authorization": f"Bearer {token}"}),
                         (create_app(engine, any_host=True), {})):
        with TestClient(app, base_url="http://papers.example") as client:
            assert client.get("/api/info", headers=headers).status_code == 200


def test_error_messages_do_not_tell_where_the_index_lives(index_path, monkeypatch):
    from semsearch.errors import StoreError

    engine = Engine.open(index_path, embedder=HashingEmbedder())

    def broken(*args, **kwargs):
        raise StoreError(f"{index_path.resolve()}/gen-000001/documents.sqlite: damaged")

    monkeypatch.setattr(Engine, "info", broken)
    with TestClient(create_app(engine), base_url=LOCAL) as client:
        answer = client.get("/api/info")
    assert answer.status_code == 503
    assert str(index_path.parent) not in answer.text
    assert answer.json()["error"] == f"{index_path.name}/gen-000001/documents.sqlite: damaged"


def test_explain_is_bounded_to_the_first_results(client):
    from semsearch.server.app import MAX_EXPLAINED

    answer = client.get("/api/search", params={"q": "attention", "explain": "true",
                                               "k": MAX_EXPLAINED + 1})
    assert answer.status_code == 422 and f"k up to {MAX_EXPLAINED}" in answer.json()["error"]
    answer = client.post("/api/like", json={"ids": ["bert"], "explain": True, "k": 50})
    assert answer.status_code == 422


def test_a_body_that_never_arrives_whole_is_answered_408_in_bounded_time(index_path,
                                                                         monkeypatch):
    """A client that declares more body than it sends must not hold the connection."""
    import asyncio

    from semsearch.server import guard

    monkeypatch.setattr(guard, "BODY_SECONDS", 0.5)
    app = create_app(Engine.open(index_path, embedder=HashingEmbedder()))
    sent = []

    async def receive():
        if not sent:
            sent.append(1)
            return {"type": "http.request", "body": b'{"q": "att', "more_body": True}
        await asyncio.sleep(3600)  # the rest never comes

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": "/api/search", "query_string": b"",
             "headers": [(b"host", b"localhost"), (b"content-length", b"100"),
                         (b"content-type", b"application/json")]}
    asyncio.run(asyncio.wait_for(app(scope, receive, send), 10))
    assert sent[1]["status"] == 408


# -- the reader's routes: tags, recommendations, the inbox, papers marked read ------------------

@pytest.fixture
def reader_client(tmp_path):
    """A server over its own index: these tests write the reader's state."""
    path = tmp_path / "idx"
    Engine(path, embedder=HashingEmbedder()).build(PAPERS)
    with TestClient(create_app(Engine.open(path, embedder=HashingEmbedder())),
                    base_url=LOCAL) as client:
        yield client


def test_tags_are_written_and_read_by_any_name_of_a_paper(reader_client):
    answer = reader_client.post("/api/tags/to read", json={"papers": ["Graph attention networks",
                                                                    "bert"]})
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"tag": "to read", "papers": ["2301.00001", "bert"], "changed": 2}
    answer = reader_client.post("/api/tags/to read", json={"papers": ["hep-th/9901001"],
                                                           "against": True})
    assert answer.json()["changed"] == 1
    [summary] = reader_client.get("/api/tags").json()["tags"]
    assert (summary["name"], summary["papers"], summary["against"]) == ("to read", 2, 1)
    marks = {m["id"]: m["verdict"] for m in reader_client.get("/api/tags/to read").json()["papers"]}
    assert marks == {"2301.00001": "for", "bert": "for", "hep-th/9901001": "against"}
    answer = reader_client.post("/api/tags/to read/untag", json={"papers": ["bert"]})
    assert answer.json()["changed"] == 1
    assert reader_client.get("/api/tags").json()["tags"][0]["papers"] == 1


def test_recommendations_and_the_inbox_leave_out_what_the_reader_marked(reader_client):
    reader_client.post("/api/tags/attention", json={"papers": ["2301.00001"]})
    hits = reader_client.get("/api/recommend", params={"k": 10}).json()["results"]
    ids = [hit["id"] for hit in hits]
    assert "2301.00001" not in ids and set(ids) <= {"2301.00002", "hep-th/9901001", "bert"}
    assert all(hit["reason"]["tag"] == "attention" for hit in hits)
    inbox = reader_client.get("/api/inbox").json()
    assert inbox["new"] == 3 and len(inbox["results"]) == 3   # a look marks nothing read
    assert reader_client.get("/api/inbox").json()["new"] == 3
    assert reader_client.post("/api/seen", json={"papers": ["bert"]}).json() == {"seen": 1}
    assert "bert" not in [h["id"] for h in reader_client.get("/api/inbox").json()["results"]]
    assert "bert" not in [h["id"] for h in reader_client.get("/api/recommend").json()["results"]]


def test_unknown_papers_are_404_unknown_tags_400_and_bad_bodies_422(reader_client):
    answer = reader_client.post("/api/tags/x", json={"papers": ["no such paper"]})
    assert answer.status_code == 404 and "no such paper" in answer.json()["error"]
    answer = reader_client.get("/api/recommend", params={"tag": "nothing"})
    assert answer.status_code == 400 and "no tag 'nothing'" in answer.json()["error"]
    for body in ({"papers": []}, {"papers": "bert"}, {"papers": ["bert"], "against": "yes"},
                 {"papers": ["bert"], "extra": 1}):
        assert reader_client.post("/api/tags/x", json=body).status_code == 422, body
    assert reader_client.post("/api/tags/" + "t" * 201, json={"papers": ["bert"]}
                              ).status_code == 422


def test_writes_must_be_json_from_this_site(reader_client):
    """A form or a page of another site cannot tag papers behind the reader's back."""
    form = reader_client.post("/api/tags/x", content="papers=bert",
                              headers={"content-type": "application/x-www-form-urlencoded"})
    assert form.status_code == 415
    elsewhere = reader_client.post("/api/tags/x", json={"papers": ["bert"]},
                                   headers={"origin": "http://evil.example"})
    assert elsewhere.status_code == 403
    here = reader_client.post("/api/tags/x", json={"papers": ["bert"]},
                              headers={"origin": "http://localhost"})
    assert here.status_code == 200
    assert reader_client.get("/api/tags").json()["tags"][0]["papers"] == 1


class HeldEmbedder(HashingEmbedder):
    """Embeds the query "hold" only when let go: a slow request, for as long as a test wants."""

    def __init__(self):
        super().__init__()
        import threading

        self.holding = threading.Event()
        self.release = threading.Event()

    def embed_queries(self, texts):
        if "hold" in texts:
            self.holding.set()
            assert self.release.wait(60)
        return super().embed_queries(texts)


def test_a_slow_request_does_not_stall_the_others(index_path):
    """Requests run side by side, each on an engine of its own: while one is held, others are
    answered, and the held one then answers too."""
    import threading

    embedder = HeldEmbedder()
    app = create_app(Engine.open(index_path, embedder=embedder), workers=2)
    with TestClient(app, base_url=LOCAL) as client:
        held = {}
        slow = threading.Thread(target=lambda: held.update(
            answer=client.get("/api/search", params={"q": "hold", "mode": "dense"})))
        slow.start()
        try:
            assert embedder.holding.wait(30)
            for _ in range(3):
                answer = client.get("/api/search", params={"q": "graph attention"})
                assert answer.status_code == 200
                assert answer.json()["results"][0]["id"] == "2301.00001"
            assert slow.is_alive()  # still held while the others were answered
        finally:
            embedder.release.set()
            slow.join(30)
        assert held["answer"].status_code == 200


def test_every_engine_of_a_server_sees_another_process_write(index_path, tmp_path):
    """Each request's engine moves to the newest state, whichever engine takes it."""
    path = tmp_path / "idx"
    Engine(path, embedder=HashingEmbedder()).build(PAPERS)
    app = create_app(Engine.open(path, embedder=HashingEmbedder()), workers=2, warm_up=True)
    with TestClient(app, base_url=LOCAL) as client:
        for _ in range(2):  # both engines open, on the first state, their facets counted
            assert client.get("/api/info").json()["count"] == 4
            assert "2024" not in [f["value"] for f in client.get("/api/facets").json()["year"]]
        Engine.open(path, embedder=HashingEmbedder()).add(
            [Document("new-1", "Graph transformers", "Attention on graphs.", {"year": 2024})])
        for _ in range(4):
            assert client.get("/api/info").json()["count"] == 5
            assert "2024" in [f["value"] for f in client.get("/api/facets").json()["year"]]


def test_duplicates_are_listed_and_follow_the_index(tmp_path):
    copy = Document("copy-of-2301.00002", "Attention is all you need!",
                    "The transformer uses attention only. It translates very well.")
    path = tmp_path / "idx"
    Engine(path, embedder=HashingEmbedder()).build(PAPERS + [copy])
    with TestClient(create_app(Engine.open(path, embedder=HashingEmbedder())),
                    base_url=LOCAL) as client:
        answer = client.get("/api/duplicates")
        assert answer.status_code == 200, answer.text
        [group] = answer.json()["groups"]
        assert group["ids"] == ["2301.00002", "copy-of-2301.00002"]
        assert client.get("/api/duplicates", params={"threshold": 0}).status_code == 422
        Engine(path, embedder=HashingEmbedder()).remove(["copy-of-2301.00002"])
        assert client.get("/api/duplicates").json()["groups"] == []  # the new state's answer


def test_the_map_is_served_as_regions_binary_points_and_papers(tmp_path):
    path = tmp_path / "idx"
    Engine(path, embedder=HashingEmbedder()).build(PAPERS)
    with TestClient(create_app(Engine.open(path, embedder=HashingEmbedder())),
                    base_url=LOCAL) as client:
        missing = client.get("/api/map")
        assert missing.status_code == 400 and "semsearch map" in missing.json()["error"]
        Engine(path, embedder=HashingEmbedder()).map()  # fitted by another process's engine
        meta = client.get("/api/map").json()
        assert meta["count"] == 4 and meta["regions"] and len(meta["bounds"]) == 4
        points = client.get("/api/map/points")
        assert points.headers["content-type"] == "application/octet-stream"
        assert len(points.content) == 4 * 9  # two float32s and a byte each
        first = client.get("/api/map/points/0").json()
        assert first["id"] == "2301.00001" and first["title"] == "Graph attention networks"
        assert client.get("/api/map/points/4").status_code == 404
        located = client.post("/api/map/locate", json={"ids": ["bert", "no such paper"]})
        assert located.json() == {"points": [3]}
