"""The reader's side of an index: tags that last, recommendations for them, and the inbox of
each day's new papers, over the engine's public calls and the reader's own state
(``reading.state``)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from semsearch.documents import Document, Hit, Reason
from semsearch.errors import InputError, QueryError, UnknownPaper
from semsearch.reading import inbox as inboxes
from semsearch.reading import recommend as ranking
from semsearch.reading.state import AGAINST, FOR, Mark, ReaderState, TagSummary, now

if TYPE_CHECKING:
    from semsearch.engine import Engine

#: the inbox's bookmark in the index, and the moment it was last read up to
BOOKMARK, LAST_READ = "inbox.bookmark", "inbox.last_read"
#: papers seen most recently that a new paper is compared with by vector (all are by title)
RECENT_SEEN = 5000
#: new papers the inbox ranks among themselves at most; of more (an inbox not read for long,
#: or `--since` far back), those nearest the tags (each tag's neighbourhood in the index, or
#: by direction for papers from a file), or without tags the first that came
RANKED_AT_MOST = 2000


@dataclass(frozen=True)
class TagInfo:
    """A tag: its name, papers marked for and against it, when it last changed, and which of
    its papers are no longer in the index (kept, and said)."""

    name: str
    papers: int
    against: int
    changed: str
    missing: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "papers": self.papers, "against": self.against,
                "changed": self.changed, "missing": list(self.missing)}


@dataclass(frozen=True)
class TagChange:
    """What a tag or untag did: the tag, the papers named (ids), and how many changed."""

    tag: str
    papers: tuple[str, ...]
    changed: int


class Reader:
    """Tags, seen papers and saved searches of one index, and the rankings they ask for."""

    def __init__(self, engine: Engine, state: str | Path | None = None):
        """The reader of ``engine``'s index; ``state``: keep the state in another file than
        the one beside the index (to try tags out, or to measure)."""
        self.engine = engine
        self.state = ReaderState(Path(state) if state else engine.folder.reader_path)

    # -- tags -------------------------------------------------------------------------------

    def tag(self, papers: Iterable[str], tag: str, against: bool = False) -> TagChange:
        """Mark papers (ids, titles, short names, citation keys) in ``tag`` for it, or
        against it (a negative example for that tag)."""
        named = self._named(papers)
        changed = self.state.mark(tag, [(doc.id, doc.title) for doc in named],
                                  AGAINST if against else FOR)
        return TagChange(self.state.tag_name(tag), tuple(doc.id for doc in named), changed)

    def untag(self, papers: Iterable[str], tag: str) -> TagChange:
        """Take papers out of a tag (by any name; by id for a paper no longer indexed)."""
        marked = {m.paper for m in self.state.marks([tag])}
        ids = []
        for name in papers:
            try:
                ids.append(self.engine.get(name).id)
            except UnknownPaper:
                if name not in marked:
                    raise
                ids.append(name)
        return TagChange(self.state.tag_name(tag), tuple(ids), self.state.unmark(tag, ids))

    def tags(self) -> list[TagInfo]:
        """Every tag, the most recently changed first, with the papers it names that are no
        longer in the index."""
        marks = self.state.marks()
        present = self._present({m.paper for m in marks})
        missing: dict[str, list[str]] = {}
        for mark in marks:
            if mark.paper not in present:
                missing.setdefault(mark.tag, []).append(mark.paper)
        return [TagInfo(s.name, s.papers, s.against, s.changed, tuple(missing.get(s.name, ())))
                for s in self.state.tags()]

    def marks(self, tags: Iterable[str] | None = None) -> list[Mark]:
        return self.state.marks(tags)

    def delete_tag(self, tag: str) -> int:
        return self.state.delete_tag(tag)

    def tags_from_source(self) -> dict[str, int]:
        """Tags made from the tags and keywords the sources gave the papers (BibTeX keywords,
        Zotero tags): each source tag becomes a tag with its papers marked for it."""
        made: dict[str, int] = {}
        for value, ids in self.engine.papers_by_facet("tag").items():
            papers = self.engine.papers(ids)
            made[value] = self.state.mark(value, [(doc.id, doc.title)
                                                  for doc in papers.values()])
        return made

    # -- seen -------------------------------------------------------------------------------

    def see(self, papers: Iterable[str]) -> int:
        """Mark papers as seen: recommendations and the inbox leave them out."""
        named = self._named(papers)
        self.state.see([(doc.id, inboxes.title_key(doc.title)) for doc in named])
        return len(named)

    def unsee(self, papers: Iterable[str]) -> None:
        self.state.unsee([doc.id for doc in self._named(papers)])

    # -- saved searches ---------------------------------------------------------------------

    def save_search(self, name: str, query: str, **options: Any) -> None:
        if not name.strip() or not query.strip():
            raise QueryError("a saved search needs a name and a query")
        self.state.save_search(name.strip(), query.strip(), json.dumps(options, sort_keys=True))

    def searches(self):
        return self.state.searches()

    # -- moving tags between machines and indexes -------------------------------------------

    def export(self, path: str | Path) -> int:
        """Every tag mark, paper seen and saved search as JSON lines; how many lines."""
        lines = [{"tag": m.tag, "paper": m.paper, "verdict": m.verdict, "title": m.title,
                  "at": m.at} for m in self.state.marks()]
        lines += [{"seen": paper, "title_key": key} for paper, key in self.state.seen().items()]
        lines += [{"search": s.name, "query": s.query, "options": json.loads(s.options)}
                  for s in self.state.searches()]
        from semsearch import _fs

        _fs.write_atomically(Path(path), "".join(json.dumps(line, ensure_ascii=False) + "\n"
                                                 for line in lines))
        return len(lines)

    def import_(self, path: str | Path) -> dict[str, int]:
        """Tags, seen papers and saved searches from an export (merged into what is here:
        a paper's verdict in a tag is the imported one); how many of each."""
        counts = {"marks": 0, "seen": 0, "searches": 0}
        marks: dict[tuple[str, str], list[tuple[str, str]]] = {}
        seen, searches = [], []
        try:
            lines = Path(path).read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as error:
            raise InputError(str(path), None, f"cannot read the tags ({error})") from None
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                if "tag" in record:
                    key = (str(record["tag"]), str(record.get("verdict", FOR)))
                    marks.setdefault(key, []).append((str(record["paper"]),
                                                      str(record.get("title", ""))))
                elif "seen" in record:
                    seen.append((str(record["seen"]), str(record.get("title_key", ""))))
                elif "search" in record:
                    searches.append((str(record["search"]), str(record["query"]),
                                     json.dumps(record.get("options", {}), sort_keys=True)))
                else:
                    raise KeyError("tag, seen or search")
            except (ValueError, KeyError, TypeError, AttributeError) as error:
                raise InputError(str(path), number, f"not a line of a tags export "
                                                    f"({error})") from None
        for (tag, verdict), papers in marks.items():
            self.state.mark(tag, papers, verdict)
            counts["marks"] += len(papers)
        if seen:
            self.state.see(seen)
            counts["seen"] = len(seen)
        for name, query, options in searches:
            self.state.save_search(name, query, options)
            counts["searches"] += 1
        return counts

    # -- recommendations --------------------------------------------------------------------

    def recommend(self, tags: Sequence[str] | None = None, k: int = 10,
                  since: str | None = None) -> list[Hit]:
        """Papers ranked for the tags (every tag by default), each with its reason; papers
        tagged (for or against any tag) and papers seen are left out. ``since``: only papers
        that came into the index from then on (a date, or a span such as 3d)."""
        _check_k(k)
        models = self._models(tags)
        if not models:
            raise QueryError("no tag has a paper in the index yet: tag some papers first "
                             "(`semsearch tag PAPER... TAG`)")
        left_out = {m.paper for m in self.state.marks()} | set(self.state.seen())
        allowed = None
        if since is not None:
            self._sync()
            allowed = set(self.state.arrivals_since(inboxes.parse_since(since)))
        best: dict[str, ranking.Scored] = {}
        for model in models:
            pool = self._neighbourhood(model, allowed)
            if not pool[0]:
                continue
            for scored in self._scored(model, *pool):
                if scored.paper in left_out or (allowed is not None
                                                and scored.paper not in allowed):
                    continue
                if scored.paper not in best or scored.score > best[scored.paper].score:
                    best[scored.paper] = scored
        chosen = sorted(best.values(), key=lambda s: (-s.score, s.paper))[:k]
        return self._hits(chosen)

    def _models(self, tags: Sequence[str] | None) -> list[ranking.TagModel]:
        marks = self.state.marks(tags)
        by_tag: dict[str, dict[str, list[str]]] = {}
        for mark in marks:
            by_tag.setdefault(mark.tag, {FOR: [], AGAINST: []})[mark.verdict].append(mark.paper)
        background_ids = self.engine.sample(ranking.BACKGROUND)
        background = self._vectors(background_ids)[1]
        models = []
        for name, verdicts in by_tag.items():
            liked_ids, liked = self._vectors(verdicts[FOR])
            if not liked_ids:
                continue
            disliked = self._vectors(verdicts[AGAINST])[1]
            known = set(verdicts[FOR]) | set(verdicts[AGAINST])
            keep = [i for i, paper in enumerate(background_ids) if paper not in known]
            text = " ".join(doc.text for doc in self.engine.papers(liked_ids).values())
            models.append(ranking.TagModel(name, liked, liked_ids, disliked, background[keep],
                                           text))
        return models

    def _neighbourhood(self, model: ranking.TagModel, allowed: set[str] | None = None
                       ) -> tuple[list[str], np.ndarray, dict[str, float]]:
        """The tag's top papers in the whole index by its direction and by its papers' words
        (and, where only some papers may be recommended, those too): the pool its walk runs
        over, their vectors, and BM25's scores of the best by words."""
        mine = set(model.liked_ids)
        [by_meaning] = self.engine.search_vectors(model.direction[None],
                                                  k=ranking.POOL + len(mine))
        # past its SCALE_DEPTH best, the words side scores 0: deeper would only cost time
        by_words = self.engine.search(model.text, k=ranking.SCALE_DEPTH + len(mine),
                                      mode="lexical") if model.text.strip() else []
        words = {hit.id: hit.score for hit in by_words if hit.id not in mine}
        ids = list(dict.fromkeys([hit.id for hit in by_meaning if hit.id not in mine]
                                 [:ranking.POOL] + list(words)[:ranking.POOL]))
        if allowed is not None and len(allowed) <= ranking.POOL:
            listed = set(ids)
            ids += sorted(paper for paper in allowed if paper not in mine | listed)
            ids, vectors = self._vectors(ids)
            return ids, vectors, words
        return ids, self.engine.vectors(ids), words

    def _scored(self, model: ranking.TagModel, ids: list[str], vectors: np.ndarray,
                words: dict[str, float] | None = None,
                among: int | None = None) -> list[ranking.Scored]:
        scores = model.rank(ids, vectors, words, among)
        closest, similarity = model.closest(vectors)
        return [ranking.Scored(paper, float(score), model.name, model.liked_ids[at], float(sim))
                for paper, score, at, sim in zip(ids, scores, closest, similarity)]

    def _hits(self, chosen: list[ranking.Scored], folded: dict[str, list[str]] | None = None,
              documents: dict[str, Document] | None = None) -> list[Hit]:
        """Hits of the papers chosen (from the index, or ``documents``), with reasons."""
        papers = self.engine.papers([s.paper for s in chosen] + [s.closest for s in chosen])
        papers.update(documents or {})
        hits = []
        for rank, scored in enumerate(chosen, start=1):
            doc = papers[scored.paper]
            closest = papers.get(scored.closest)
            reason = Reason(scored.tag, scored.closest, closest.title if closest else "",
                            scored.similarity, tuple((folded or {}).get(scored.paper, ())))
            hits.append(Hit(rank=rank, id=doc.id, title=doc.title, score=scored.score,
                            abstract=doc.abstract, metadata=doc.metadata, reason=reason))
        return hits

    # -- the inbox ----------------------------------------------------------------------------

    def inbox(self, since: str | None = None, papers: Iterable[Document] | None = None,
              k: int = inboxes.INBOX_SIZE, peek: bool = False) -> inboxes.Inbox:
        """The papers new since the inbox was last read (or since ``since``; or ``papers``,
        read from a file and not indexed), ranked for the tags, each shown once: shown papers
        are marked seen (unless ``peek``), and a paper that is another copy of one already
        seen, tagged or shown is folded into it."""
        _check_k(k)
        tagged = any(mark.verdict == FOR for mark in self.state.marks())
        built: list[list] = []

        def models() -> list:
            """The tags' models, built when first needed (not for an inbox with nothing
            new)."""
            if tagged and not built:
                built.append(self._models(None))
            return built[0] if built else []
        if papers is not None:
            documents = list(papers)
            vectors = self.engine.embed([doc.text for doc in documents]) if documents else \
                np.zeros((0, 0), np.float32)
            moment = inboxes.parse_since(since) if since else ""
            new_count = len(documents)
            if len(documents) > RANKED_AT_MOST:
                nearest = self._nearest_by_direction(models(), vectors)
                documents = [documents[at] for at in nearest]
                vectors = vectors[nearest]
        else:
            read_up_to = self._sync()
            moment = inboxes.parse_since(since) if since else \
                self.state.setting(LAST_READ) or self._latest_arrival()
            new = self.state.arrivals_since(moment)
            if not since and self.state.setting(LAST_READ):  # after the last reading, not at it
                new = {paper: at for paper, at in new.items() if at > moment}
            left_out = {m.paper for m in self.state.marks()} | set(self.state.seen())
            fresh = [paper for paper in sorted(new, key=lambda p: (new[p], p))
                     if paper not in left_out]
            new_count = len(fresh)
            if len(fresh) > RANKED_AT_MOST:
                fresh = self._nearest_in_index(models(), fresh)
            found = self.engine.papers(fresh)
            documents = [found[paper] for paper in fresh if paper in found]
            vectors = self._vectors([doc.id for doc in documents])[1]
        kept, kept_vectors, folded = self._unfolded(documents, vectors)
        if kept and models():
            chosen = self._ranked_for(models(), kept, kept_vectors)
        else:
            chosen = [ranking.Scored(doc.id, 0.0, "", "", 0.0) for doc in kept]
        chosen = chosen[:k]
        by_id = {doc.id: doc for doc in kept}
        hits = self._inbox_hits(chosen, by_id, folded, models() if chosen else [])
        if not peek:
            shown = [by_id[s.paper] for s in chosen]
            again = [doc for doc in documents if folded.get(doc.id) in {s.paper for s in chosen}
                     or (doc.id in folded and folded[doc.id] not in by_id)]
            self.state.see([(doc.id, inboxes.title_key(doc.title)) for doc in shown + again])
            if papers is None:
                self.state.set_setting(LAST_READ, read_up_to)
        return inboxes.Inbox(hits=hits, new=new_count, since=moment,
                             folded={paper: into for paper, into in folded.items()},
                             ranked=tagged)

    def _sync(self) -> str:
        """Record when the papers added since the last look came into the index; the moment
        the index was read up to (its latest commit's)."""
        found, bookmark = self.engine.arrivals(self.state.setting(BOOKMARK))
        read_up_to = max((at for _, at in found), default="") or \
            self.state.setting(LAST_READ) or now()
        self.state.arrived(found, {BOOKMARK: bookmark})
        return max(read_up_to, self._latest_arrival())

    def _latest_arrival(self) -> str:
        return self.state.latest_arrival() or now()

    def _nearest_in_index(self, models: list[ranking.TagModel], fresh: list[str]) -> list[str]:
        """Of many new papers in the index, the RANKED_AT_MOST the inbox ranks: those in the
        tags' neighbourhoods (nearest first by tag, in turn), or the first that came."""
        if not models:
            return fresh[:RANKED_AT_MOST]
        allowed = set(fresh)
        chosen: dict[str, None] = {}
        near = [[paper for paper in self._neighbourhood(model)[0] if paper in allowed]
                for model in models]
        for place in range(max(map(len, near), default=0)):
            for papers in near:
                if place < len(papers) and len(chosen) < RANKED_AT_MOST:
                    chosen.setdefault(papers[place])
        return list(chosen)

    def _nearest_by_direction(self, models: list[ranking.TagModel],
                              vectors: np.ndarray) -> np.ndarray:
        """Of many papers from a file, the positions of the RANKED_AT_MOST the inbox ranks:
        the best by any tag's direction, or the first."""
        if not models:
            return np.arange(RANKED_AT_MOST)
        best = np.max([vectors @ model.direction for model in models], axis=0)
        return np.sort(np.argsort(-best, kind="stable")[:RANKED_AT_MOST])

    def _unfolded(self, documents: list[Document], vectors: np.ndarray):
        """The papers that are not another copy of one seen or tagged, or of one earlier in
        the list; and which were folded into which."""
        if not documents:
            return [], np.zeros((0, 0), np.float32), {}
        seen, marks = self.state.seen(), self.state.marks()
        keys = {key: paper for paper, key in seen.items() if key}
        for mark in marks:
            keys.setdefault(inboxes.title_key(mark.title), mark.paper)
        recent = [m.paper for m in marks] + list(seen)[-RECENT_SEEN:]
        known = list(self.engine.papers(recent).values())
        known_ids = [doc.id for doc in known]
        known_titles = [inboxes.title_key(doc.title) for doc in known]
        dimension = vectors.shape[1] if vectors.ndim == 2 else 0
        known_vectors = self.engine.vectors(known_ids) if known_ids else \
            np.zeros((0, dimension), np.float32)
        # every new paper against every known one and every other new one, at once
        candidates = np.concatenate([known_vectors.reshape(-1, dimension), vectors])
        similarity = vectors @ candidates.T
        titles = known_titles + [inboxes.title_key(doc.title) for doc in documents]
        ids = known_ids + [doc.id for doc in documents]
        compared = np.zeros(len(candidates), bool)
        compared[:len(known_ids)] = True
        kept, kept_vectors, folded = [], [], {}
        for at, (doc, vector) in enumerate(zip(documents, vectors)):
            key = titles[len(known_ids) + at]
            into = inboxes.same_paper(key, similarity[at], compared, keys, ids, titles)
            if into is not None and into != doc.id:
                folded[doc.id] = into
                continue
            kept.append(doc)
            kept_vectors.append(vector)
            keys.setdefault(key, doc.id)
            compared[len(known_ids) + at] = True
        return kept, np.asarray(kept_vectors, dtype=np.float32), folded

    def _ranked_for(self, models: list[ranking.TagModel], documents: list[Document],
                    vectors: np.ndarray) -> list[ranking.Scored]:
        """The given papers scored for each tag among themselves (see ``ranking``), each
        taking its best tag; best first."""
        best: dict[str, ranking.Scored] = {}
        ids = [doc.id for doc in documents]
        for model in models:
            for each in self._scored(model, ids, vectors, words=None, among=len(ids)):
                if each.paper not in best or each.score > best[each.paper].score:
                    best[each.paper] = each
        return sorted(best.values(), key=lambda s: (-s.score, s.paper))

    def _inbox_hits(self, chosen, by_id, folded, models) -> list[Hit]:
        into: dict[str, list[str]] = {}
        for paper, target in folded.items():
            into.setdefault(target, []).append(paper)
        if models:
            return self._hits(chosen, into, by_id)
        return [Hit(rank=rank, id=by_id[s.paper].id, title=by_id[s.paper].title, score=0.0,
                    abstract=by_id[s.paper].abstract, metadata=by_id[s.paper].metadata,
                    reason=Reason("", "", "", 0.0, tuple(into.get(s.paper, ()))))
                for rank, s in enumerate(chosen, start=1)]

    # -- helpers ------------------------------------------------------------------------------

    def _named(self, papers: Iterable[str]) -> list[Document]:
        names = list(papers)
        if not names:
            raise QueryError("name at least one paper")
        return list({doc.id: doc for doc in (self.engine.get(name) for name in names)}.values())

    def _present(self, ids: Iterable[str]) -> set[str]:
        return set(self.engine.papers(list(ids)))

    def _vectors(self, ids: Sequence[str]) -> tuple[list[str], np.ndarray]:
        """The ids of these papers that are in the index, in their order, and their
        vectors."""
        present = self.engine.papers(ids)
        kept = [paper for paper in dict.fromkeys(ids) if paper in present]
        if not kept:
            return [], np.zeros((0, self.engine.info().dimension), np.float32)
        return kept, self.engine.vectors(kept)


def _check_k(k: int) -> None:
    if not isinstance(k, int) or isinstance(k, bool) or not 1 <= k <= 1000:
        raise QueryError(f"k must be a whole number from 1 to 1000, not {k!r}")
