"""The ``semsearch`` command: click commands and output formatting over the library, nothing more."""

from __future__ import annotations

import contextlib
import functools
import json
import os
import shutil
import sys
import textwrap
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import click

from semsearch.errors import InterruptedAfterCommit, NoDocuments, SemsearchError
from semsearch.engine import (DEDUP_MODES, DEFAULT_DEDUP, DEFAULT_LIKE_METHOD, DEFAULT_MODE,
                              DEFAULT_TARGET_RECALL, DUPLICATE_THRESHOLD, HYBRID_SCALE, INDEX_TYPES, LIKE_METHODS,
                              MAX_QUERY_CHARS, MODES, Engine)
from semsearch.ray_embedding import DEVICES as RAY_DEVICES
from semsearch.readers import FORMATS

#: the exit status of a command stopped by Ctrl-C (128 + SIGINT), as shells report it
INTERRUPTED = 130

EXAMPLES = """
\b
Examples:
  semsearch index --sample                      # the two bundled feed pages
  semsearch index papers.jsonl --index mine     # your own export
  semsearch search "retrieval augmented generation with knowledge graphs"
  semsearch like "MM-Embed: Universal Multimodal Retrieval with Multimodal LLMs"
  semsearch search "protein folding" --index mine --json | jq .title
"""


class _Group(click.Group):
    """Turns semsearch's own errors into one line on stderr and exit status 1; an
    interruption after a write committed into one line saying so, and Ctrl-C's status."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except InterruptedAfterCommit as interrupted:
            click.echo(str(interrupted), err=True)
            ctx.exit(INTERRUPTED)
        except SemsearchError as error:
            raise click.ClickException(str(error)) from None


def index_option(function: Callable) -> Callable:
    return click.option(
        "--index", "-i", "index", default=None, metavar="NAME|PATH",
        help="Index name (a folder under ./indexes, or $SEMSEARCH_INDEX_ROOT) or path. "
             "Default: $SEMSEARCH_INDEX, else 'default'.")(function)


def model_option(function: Callable) -> Callable:
    return click.option(
        "--model", default=None, metavar="PATH",
        help="A local sentence-transformers model folder. Default: the bundled "
             "all-MiniLM-L6-v2 (for an existing index: the model it was built with).")(function)


def k_option(function: Callable) -> Callable:
    return click.option("-k", "--top", "k", default=10, show_default=True,
                        type=click.IntRange(min=1), help="How many results.")(function)


def dedup_option(function: Callable) -> Callable:
    return click.option(
        "--dedup", type=click.Choice(DEDUP_MODES), default=DEFAULT_DEDUP, show_default=True,
        help="exact: drop a paper whose title and abstract another has. near: fold "
             "near-duplicates too (see `semsearch duplicates`) into the paper that came "
             "first, which keeps their ids.")(function)


def json_option(function: Callable) -> Callable:
    return click.option("--json", "as_json", is_flag=True,
                        help="One JSON object per line, for scripts.")(function)


@click.group(cls=_Group, epilog=EXAMPLES)
@click.version_option(package_name="semsearch")
def main() -> None:
    """Semantic search over scientific paper abstracts.

    Build an index from papers you have (saved feed pages, JSONL, CSV, a BEIR corpus, the arXiv
    metadata snapshot), then ask it by meaning, or for papers like one you know.
    """


def input_options(function: Callable) -> Callable:
    """How to read input files: shared by `index` and `add`."""
    for option in reversed([
        click.option("--format", "format_name", type=click.Choice(list(FORMATS)),
                     help="Read every PATH as this format instead of detecting it per file."),
        click.option("--id-field", metavar="NAME", help="JSONL/CSV field holding the paper id."),
        click.option("--title-field", metavar="NAME", help="JSONL/CSV field holding the title."),
        click.option("--abstract-field", metavar="NAME",
                     help="JSONL/CSV field holding the abstract."),
        click.option("--skip-bad", is_flag=True,
                     help="Pass over unreadable records (counted in the report) instead of "
                          "stopping."),
        click.option("--verbose", "-v", is_flag=True,
                     help="List every passage of a page that was read as neither a paper nor "
                          "page chrome (the report counts them), with its line."),
        click.option("--quantized/--fp32", "quantized", default=None,
                     help="Embed with the int8 model (about twice as fast, slightly less exact: "
                          "see benchmarks/README.md) or the fp32 one. Default: fp32 for `index`, "
                          "as the index was built for `add`."),
    ]):
        function = option(function)
    return function


def cluster_options(function: Callable) -> Callable:
    """--ray [ADDRESS], --ray-actors and --ray-device: shared by `index` and `add`, gathered
    into one ``ray`` argument (RaySettings, or None to embed here)."""
    for option in reversed([
        click.option("--ray", "ray_address", is_flag=False, flag_value="local", default=None,
                     metavar="[ADDRESS]",
                     help="Embed the papers on a Ray cluster: an existing one's address "
                          "(ray://HOST:10001, or auto), or none to start Ray on this machine. "
                          "Needs pip install 'semsearch[ray]'. Reading and the index stay here."),
        click.option("--ray-actors", type=click.IntRange(min=1), default=None, metavar="N",
                     help="Embedding actors on the cluster (default: one per CPU, or per "
                          "GPU on GPUs)."),
        click.option("--ray-device", type=click.Choice(RAY_DEVICES), default=None,
                     help="Where the actors embed: auto (default) takes a GPU an actor where "
                          "the cluster has GPUs (the workers need onnxruntime-gpu), cpu never, "
                          "gpu always (an error on a cluster without GPUs)."),
    ]):
        function = option(function)

    @functools.wraps(function)
    def gathered(*args, ray_address, ray_actors, ray_device, **kwargs):
        settings = None
        if ray_address not in (None, "local", "auto") and ":" not in ray_address:
            raise click.UsageError(f"--ray takes a cluster's address (ray://HOST:10001, "
                                   f"HOST:6379 or auto), not {ray_address!r}: with none, put "
                                   f"--ray after the PATHs")
        if ray_address is not None:
            from semsearch.ray_embedding import RaySettings

            if ray_address == "local":
                click.echo("Starting Ray on this machine: its processes take seconds to a "
                           "minute to start before the first paper is embedded", err=True)

            settings = RaySettings(address=None if ray_address == "local" else ray_address,
                                   actors=ray_actors,
                                   **({"device": ray_device} if ray_device else {}))
        elif ray_actors is not None or ray_device is not None:
            raise click.UsageError(f"{'--ray-actors' if ray_actors else '--ray-device'} goes "
                                   f"with --ray")
        return function(*args, ray=settings, **kwargs)

    return gathered


@main.command()
@click.argument("paths", nargs=-1, type=click.Path(dir_okay=False))
@index_option
@model_option
@click.option("--sample", is_flag=True, help="Index the two feed pages that ship with semsearch.")
@input_options
@cluster_options
@click.option("--index-type", type=click.Choice(INDEX_TYPES), default="auto",
              show_default=True,
              help="Vector index: auto picks exact for small collections, then HNSW, or IVF "
                   "when HNSW would not fit in 1 GiB.")
@click.option("--target-recall", type=click.FloatRange(0.5, 1.0), default=DEFAULT_TARGET_RECALL,
              show_default=True,
              help="Recall@10 against exact search that approximate indexes are tuned to.")
@click.option("--dry-run", is_flag=True,
              help="Read, validate and deduplicate only: no embedding, no index written.")
@click.option("--force", is_flag=True,
              help="Build in a folder that holds other things (they are left alone).")
@dedup_option
@json_option
def index(paths, index, model, sample, format_name, id_field, title_field, abstract_field,
          skip_bad, verbose, quantized, ray, index_type, target_recall, dry_run, force, dedup,
          as_json) -> None:
    """Build an index from PATHS (replacing what the index held).

    \b
    Formats, detected per file (--format to say which):
      feed    a saved page of a daily paper feed (title lines, abstract paragraphs)
      jsonl   one JSON object a line: id, title, abstract (or summary, text...) fields
      csv     a header row naming the same fields; a Zotero CSV export reads as it is
      beir    a BEIR corpus.jsonl (_id, title, text)
      arxiv   the arXiv metadata snapshot (JSON lines; year, categories, authors kept)
      bibtex  a .bib file from a reference manager (year, authors, keywords as tags)
    Any of them may be gzip-compressed (.jsonl.gz).

    A paper without an abstract is searched by its title. The same paper read twice (same id,
    or same title and abstract) is stored once; of two different versions under one id, the
    last one read is kept (with a warning). To add papers to an index without rebuilding it,
    use `semsearch add`.

    A build interrupted while embedding (Ctrl-C, a kill, a crash) resumes by itself: run the
    same command again and it takes the vectors already written (all but the last few
    thousand papers embedded) instead of embedding those papers again.

    With --ray, the embedding runs on a Ray cluster's actors (this machine's, with no
    address); the index is the same as a local build's (see README, "Scaling out").
    """
    from semsearch.data import sample_paths
    from semsearch.readers import ReadOptions, read_documents

    sources = list(paths) + ([str(p) for p in sample_paths()] if sample else [])
    if not sources:
        raise click.UsageError("give at least one PATH, or --sample for the bundled pages")
    options = ReadOptions(id_field=id_field, title_field=title_field,
                          abstract_field=abstract_field, skip_bad=skip_bad)
    engine = Engine(index, model=model, quantized=bool(quantized), ray=ray)
    documents = read_documents(sources, format_name, options)
    with _ProgressBars() as progress, _explaining_empty_input(options):
        report = Engine.dry_run(documents, progress) if dry_run else engine.build(
            documents, progress=progress, index_type=index_type, target_recall=target_recall,
            force=force, dedup=dedup)
    skipped = len(options.skipped)
    if as_json:
        click.echo(json.dumps({"index": None if dry_run else str(engine.path),
                               "dry_run": dry_run, "read": report.read,
                               "duplicates": report.duplicates, "replaced": report.replaced,
                               "repeated_ids": list(report.repeated_ids),
                               "skipped_bad": skipped, "indexed": report.indexed,
                               "without_abstract": report.without_abstract,
                               "reused_from_interrupted_build": report.reused,
                               "reused_from_index": report.unchanged,
                               "failed_checksum_embedded_again": report.damaged,
                               "near_duplicates_folded": report.folded,
                               **_unread_json(options, verbose),
                               "seconds": round(report.seconds, 3)}))
        _warn_repeated(report.replaced, report.repeated_ids)
        return
    if dry_run:
        click.echo(f"Checked: {report.indexed} papers would be indexed "
                   f"({report.read / max(report.seconds, 1e-9):,.0f} records/s; nothing written)")
    else:
        click.echo(f"Indexed {report.indexed} papers into {engine.path} "
                   f"in {report.seconds:.1f} s")
        if report.unchanged:
            click.echo(f"  {report.unchanged} papers unchanged since the last build: their "
                       f"vectors were taken from the index, not embedded again")
        if report.reused:
            click.echo(f"  resumed an interrupted build: {report.reused} papers' vectors taken "
                       f"from it, the rest embedded now")
        if report.damaged:
            click.echo(f"  {report.damaged} papers' vectors written by the interrupted build "
                       f"failed their checksum and were embedded again")
        _say_folded(report.folded)
    click.echo(f"  read {report.read}, duplicates dropped {report.duplicates}, "
               f"replaced by a later version {report.replaced}, bad records skipped {skipped}")
    _say_without_abstract(report.without_abstract)
    _say_cut(options)
    _say_unread(options, verbose)
    _warn_repeated(report.replaced, report.repeated_ids)
    _list_skipped(options.skipped)


@main.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(dir_okay=False))
@index_option
@input_options
@cluster_options
@dedup_option
@json_option
def add(paths, index, format_name, id_field, title_field, abstract_field, skip_bad, verbose,
        quantized, ray, dedup, as_json) -> None:
    """Add the papers in PATHS to an index, or update them by id, without rebuilding it.

    A paper whose id is new is added; one whose title or abstract changed is embedded again;
    one that is unchanged is skipped (compared by a hash of its text, so re-adding a whole
    export embeds only what changed). The vector index is not re-trained: after the collection
    has grown by half or more, `semsearch reindex` re-trains it (no re-embedding).
    """
    from semsearch.readers import ReadOptions, read_documents

    options = ReadOptions(id_field=id_field, title_field=title_field,
                          abstract_field=abstract_field, skip_bad=skip_bad)
    with Engine.open(index, quantized=quantized, ray=ray) as engine, \
            _ProgressBars() as progress, _explaining_empty_input(options):
        report = engine.add(read_documents(list(paths), format_name, options), progress,
                            dedup=dedup)
        path = engine.path
    if as_json:
        click.echo(json.dumps({"index": str(path), **_update_json(report),
                               "skipped_bad": len(options.skipped),
                               **_unread_json(options, verbose)}))
    else:
        click.echo(f"{path}: {report.new} added, {report.updated} updated (re-embedded), "
                   f"{report.unchanged} unchanged (skipped), {report.duplicates} duplicates of "
                   f"other papers; {report.count} papers in the index ({report.seconds:.1f} s)")
        if report.reused:
            click.echo(f"  resumed an interrupted add: {report.reused} papers' vectors taken "
                       f"from it, the rest embedded now")
        _say_folded(report.folded)
        if options.skipped:
            click.echo(f"  bad records skipped {len(options.skipped)}")
        _say_without_abstract(report.without_abstract)
        _say_cut(options)
        _say_unread(options, verbose)
    _warn_repeated(report.repeated, report.repeated_ids)
    _list_skipped(options.skipped)


@main.command()
@click.argument("ids", nargs=-1, required=True)
@index_option
@json_option
def remove(ids, index, as_json) -> None:
    """Remove the papers with these IDS from an index, without rebuilding it.

    If any id is not in the index, nothing is removed.
    """
    with Engine.open(index) as engine:
        report = engine.remove(ids)
        path = engine.path
    if as_json:
        click.echo(json.dumps({"index": str(path), **_update_json(report)}))
    else:
        click.echo(f"{path}: {report.removed} removed; {report.count} papers in the index")


def _update_json(report) -> dict:
    import dataclasses

    details = dataclasses.asdict(report)
    details["repeated_ids"] = list(report.repeated_ids)
    details["seconds"] = round(report.seconds, 3)
    return details


def _say_folded(count: int) -> None:
    if count:
        click.echo(f"  {count} near-duplicate{'s' if count != 1 else ''} folded into the paper "
                   f"that came first (their ids kept: `semsearch show ID` finds it)")


def _say_without_abstract(count: int) -> None:
    if count:
        papers = "1 paper" if count == 1 else f"{count} papers"
        click.echo(f"  {papers} without an abstract, searched by title (if your files "
                   f"name their abstracts otherwise, say which field with --abstract-field)")


@contextlib.contextmanager
def _explaining_empty_input(options) -> Iterator[None]:
    """An input of no documents at all said with how each file was read: a file read as a
    page of papers (a feed) by its shape, say an XML export, is likely another format."""
    try:
        yield
    except NoDocuments as error:
        pages = [path for path, name in options.read_as if name == "feed"]
        if not pages:
            raise
        raise NoDocuments(f"{error}: {', '.join(pages[:3])} {'was' if len(pages) == 1 else 'were'}"
                          f" read as the text of a page of papers (a feed), and no paper was "
                          f"found; if that is another format, give --format "
                          f"({', '.join(FORMATS)})") from None


def _say_cut(options) -> None:
    """Texts cut to their bounds, said once for the whole input."""
    if options.cut:
        from semsearch.documents import MAX_ABSTRACT_CHARS, MAX_TITLE_CHARS

        papers = "1 paper's text was" if options.cut == 1 else f"{options.cut} papers' texts were"
        click.echo(f"  {papers} cut to {MAX_TITLE_CHARS:,} characters of title and "
                   f"{MAX_ABSTRACT_CHARS:,} of abstract (the model reads the first 256 word "
                   f"pieces; BM25 the words kept)")


def _say_unread(options, verbose: bool) -> None:
    """Passages of a page that became neither a paper nor chrome: counted, listed if asked."""
    count = len(options.unread)
    if not count:
        return
    what = "passage" if count == 1 else "passages"
    click.echo(f"  {count} {what} of a page read as neither a paper nor page chrome"
               + ("" if verbose else " (--verbose lists them)"))
    if verbose:
        for passage in options.unread:
            click.echo(f"  {passage}", err=True)


def _unread_json(options, verbose: bool) -> dict:
    found = {"cut_to_bound": options.cut, "unread_passages": len(options.unread)}
    if verbose:
        found["unread"] = [{"file": p.path, "line": p.line, "reason": p.reason}
                           for p in options.unread]
    return found


def _warn_repeated(count: int, ids: tuple[str, ...]) -> None:
    if count:
        shown = ", ".join(ids) + (", ..." if count > len(ids) else "")
        click.echo(f"warning: {count} id(s) appear more than once with different texts; the "
                   f"last version of each was kept: {shown}", err=True)


def _list_skipped(skipped: list) -> None:
    for problem in skipped[:5]:
        click.echo(f"  skipped {problem}", err=True)
    if len(skipped) > 5:
        click.echo(f"  ... and {len(skipped) - 5} more", err=True)


def explain_option(function: Callable) -> Callable:
    return click.option("--explain", is_flag=True,
                        help="Show under each result its sentence closest to the query (for "
                             "`like`: to the papers given) and the query's words it "
                             "contains.")(function)


def mode_option(function: Callable) -> Callable:
    return click.option(
        "--mode", type=click.Choice(MODES), default=DEFAULT_MODE,
        show_default=True,
        help="dense: by meaning (the model); lexical: by words (BM25); hybrid: both, fused. "
             "The score column is what results are ordered by: in hybrid search "
             f"{HYBRID_SCALE}; in dense search the cosine; in lexical search BM25's score.")(
        function)


@main.command()
@index_option
@json_option
def verify(index, as_json) -> None:
    """Re-read every file of an index and check it against the manifest's checksums.

    Exits with status 1, naming each damaged file, if any file is missing, truncated or changed.
    """
    engine = Engine(index)   # not opened: opening would stop at the first damaged file
    problems = engine.verify()
    path = engine.path
    if as_json:
        click.echo(json.dumps({"index": str(path), "ok": not problems, "problems": problems}))
    elif problems:
        for problem in problems:
            click.echo(problem, err=True)
    else:
        with engine:
            click.echo(f"{path}: all files match their checksums ({engine.info().count} papers)")
    if problems:
        raise SystemExit(1)


@main.command()
@index_option
def recover(index) -> None:
    """Make the newest intact generation of a damaged index live again.

    For when an index cannot be opened (a damaged or missing manifest, a pointer that names a
    missing generation): every write keeps the generation before it, so the state before the
    last write is usually still there. Nothing newer than what was live is ever used. When no
    intact generation is left, rebuild with `semsearch index`.
    """
    engine = Engine(index)
    name = engine.recover()
    info = engine.info()
    click.echo(f"{info.path}: {name} is live ({info.count} papers, built {info.created})")


@main.command()
@index_option
@click.option("--index-type", type=click.Choice(INDEX_TYPES), default=None,
              help="Change the vector index type (default: keep it).")
@click.option("--target-recall", type=click.FloatRange(0.5, 1.0), default=DEFAULT_TARGET_RECALL,
              show_default=True,
              help="Recall@10 against exact search to tune for.")
def reindex(index, index_type, target_recall) -> None:
    """Re-train the vector index and merge everything into one segment, from the stored
    vectors and texts: nothing is embedded again.

    For a new index type or recall target, or after the collection has grown or changed a
    lot since the vector index was trained (`semsearch info` says how much). The map, if
    there is one, is fitted again. Other writes wait until it is done (minutes at a million
    papers).
    """
    with Engine.open(index) as engine, _ProgressBars() as progress:
        report = engine.rebuild(index_type=index_type, target_recall=target_recall,
                                progress=progress)
        info = engine.info()
    recall = f"; recall@10 on held-out probes {info.tuned_recall_at_10}" \
        if info.tuned_recall_at_10 is not None else ""
    click.echo(f"Rebuilt {report.indexed} papers as an index of type {info.index_type} in "
               f"{report.seconds:.1f} s{recall}")
    if info.map_fitted:
        click.echo("The map was fitted again, from the one before: some papers moved "
                   "(`semsearch map` shows it)")


@main.command()
@index_option
def upgrade(index) -> None:
    """Convert an index written by an older semsearch to this version's format.

    Reads its stored vectors and texts (checked against their checksums) and writes them as
    a new generation: nothing is embedded again. Minutes at a million papers.
    """
    engine = Engine(index)
    with _ProgressBars() as progress:
        report = engine.upgrade(progress)
    click.echo(f"{engine.path}: upgraded, {report.indexed} papers in {report.seconds:.1f} s")


def filter_options(function: Callable) -> Callable:
    """--year/--category/--author/--tag: shared by `search` and `like`, gathered into one
    ``where`` argument."""
    for option in reversed([
        click.option("--year", metavar="YEAR|FROM..TO",
                     help="Only papers from this year or range: 2023, 2021..2024, 2020.., ..2019."),
        click.option("--category", "categories", multiple=True, metavar="LABEL",
                     help="Only papers in this category, in any case (cs.CL); a prefix takes a "
                          "family (cs, or cs.*). Repeat for any of several."),
        click.option("--author", "authors", multiple=True, metavar="NAME",
                     help="Only papers by this author: a last name, or a full name in either "
                          "order (Ada Lovelace, 'Lovelace, Ada'), accents and middle names "
                          "optional. Repeat for any of several."),
        click.option("--tag", "tags", multiple=True, metavar="TAG",
                     help="Only papers with this tag (BibTeX keywords, Zotero tags, a tags "
                          "field), in any case. Repeat for any of several."),
    ]):
        function = option(function)

    @functools.wraps(function)
    def gathered(*args, year, categories, authors, tags, **kwargs):
        from semsearch.filters import Filter

        return function(*args, where=Filter.parse(year, categories, authors, tags) or None,
                        **kwargs)

    return gathered


@main.command()
@click.argument("query", required=False)
@click.option("--file", "query_file", type=click.File("rb"), metavar="PATH",
              help="Read the query from a file (a pasted abstract, say); '-' reads stdin.")
@k_option
@mode_option
@filter_options
@explain_option
@index_option
@model_option
@json_option
def search(query, query_file, k, mode, where, explain, index, model, as_json) -> None:
    """Papers that best answer QUERY (or the text of --file).

    Hybrid search (the default) fuses the model's ranking with BM25's, and finds both papers
    that mean the same thing in other words and papers that use the query's exact terms.
    Filters keep the true top k among the papers that pass them.

    \b
      semsearch search "protein structure prediction" --year 2021..2024 --category q-bio.BM
      pbpaste | semsearch search --file - --explain
    """
    if (query is None) == (query_file is None):
        raise click.UsageError("give a QUERY or --file PATH (not both)")
    text = query if query is not None else _decoded(query_file)
    with Engine.open(index, model=model) as engine:
        hits = engine.search(text, k, mode=mode, where=where, explain=explain)
        _print_hits(hits, as_json)


@main.command()
@click.argument("papers", nargs=-1, required=True)
@click.option("--not", "unlike", multiple=True, metavar="PAPER",
              help="A paper the results should be unlike; repeat for several.")
@click.option("--method", type=click.Choice(LIKE_METHODS), default=DEFAULT_LIKE_METHOD,
              show_default=True,
              help="classifier: a linear model trained on these papers against the --not ones "
                   "and random papers; rocchio: the mean of their vectors.")
@k_option
@mode_option
@filter_options
@explain_option
@index_option
@json_option
def like(papers, unlike, method, k, mode, where, explain, index, as_json) -> None:
    """Papers like PAPERS (ids or titles already in the index), and unlike --not ones.

    None of the given papers is returned. Titles match ignoring case and punctuation; an
    unknown one gets the closest titles.

    \b
      semsearch like 2401.01234
      semsearch like 2401.01234 2312.00042 --not 2305.11111 --year 2024
    """
    with Engine.open(index) as engine:
        hits = engine.more_like_these(papers, unlike, k=k, method=method, mode=mode,
                                      where=where, explain=explain)
        _print_hits(hits, as_json)


# -- the reader's side: tags, recommendations, the inbox ----------------------------------------

@main.command()
@click.argument("papers_and_tag", nargs=-1, required=True, metavar="PAPER... TAG")
@click.option("--not", "against", is_flag=True,
              help="Mark the papers against the tag: examples of what it is not.")
@index_option
@json_option
def tag(papers_and_tag, against, index, as_json) -> None:
    """Mark PAPERS (ids, titles, short names, citation keys) in TAG, for it (or --not).

    Tags are kept beside the index, by paper id: they survive `index` (a rebuild), `reindex`,
    `add` and `remove`. `semsearch recommend` ranks papers for them; `semsearch inbox` ranks
    each day's new papers.

    \b
      semsearch tag LightRAG "Graph RAG" "graph rag"
      semsearch tag 2401.01234 "graph rag" --not
    """
    if len(papers_and_tag) < 2:
        raise click.UsageError("give one or more papers, then the tag: semsearch tag PAPER... "
                               "TAG")
    *papers, name = papers_and_tag
    with Engine.open(index) as engine:
        change = engine.tag(papers, name, against=against)
        summary = {t.name: t for t in engine.tags()}[change.tag]
    if as_json:
        click.echo(json.dumps({"tag": change.tag, "papers": list(change.papers),
                               "changed": change.changed, "against": against,
                               **summary.to_json()}, ensure_ascii=False))
        return
    side = "against" if against else "for"
    click.echo(f"{change.tag}: {len(change.papers)} paper{'s' * (len(change.papers) != 1)} "
               f"marked {side} it ({change.changed} changed); {summary.papers} for it, "
               f"{summary.against} against")


@main.command()
@click.argument("papers_and_tag", nargs=-1, required=True, metavar="PAPER... TAG")
@index_option
def untag(papers_and_tag, index) -> None:
    """Take PAPERS out of TAG (a paper no longer in the index: by its id)."""
    if len(papers_and_tag) < 2:
        raise click.UsageError("give one or more papers, then the tag: semsearch untag "
                               "PAPER... TAG")
    *papers, name = papers_and_tag
    with Engine.open(index) as engine:
        change = engine.reader.untag(papers, name)
    click.echo(f"{change.tag}: {change.changed} paper{'s' * (change.changed != 1)} taken out")


@main.command()
@click.argument("name", required=False)
@click.option("--export", "export_to", type=click.Path(dir_okay=False), metavar="FILE",
              help="Write every tag, paper seen and saved search as JSON lines.")
@click.option("--import", "import_from", type=click.Path(dir_okay=False, exists=True),
              metavar="FILE", help="Read tags from an export (merged into the ones here).")
@click.option("--from-source", is_flag=True,
              help="Make tags of the tags and keywords the sources gave the papers (BibTeX "
                   "keywords, Zotero tags).")
@click.option("--delete", "delete", is_flag=True, help="Delete the tag NAME.")
@index_option
@json_option
def tags(name, export_to, import_from, from_source, delete, index, as_json) -> None:
    """The tags: names, papers for and against each, when each last changed; with NAME, that
    tag's papers.

    \b
      semsearch tags
      semsearch tags "graph rag"
      semsearch tags --export my-tags.jsonl       # to another machine, or a rebuilt index
      semsearch tags --import my-tags.jsonl
    """
    with Engine.open(index) as engine:
        reader = engine.reader
        if delete:
            if not name:
                raise click.UsageError("--delete takes the tag's NAME")
            click.echo(f"{name}: deleted, with its {reader.delete_tag(name)} marks")
            return
        if export_to:
            click.echo(f"{reader.export(export_to)} lines written to {export_to}")
            return
        if import_from:
            counts = reader.import_(import_from)
            click.echo(f"imported {counts['marks']} marks, {counts['seen']} papers seen, "
                       f"{counts['searches']} saved searches")
            return
        if from_source:
            made = reader.tags_from_source()
            click.echo(f"{len(made)} tags made from the sources' tags and keywords" +
                       "".join(f"\n  {tag}: {count}" for tag, count in made.items()))
            return
        if name:
            _print_marks(engine, name, as_json)
            return
        found = engine.tags()
    if as_json:
        for info in found:
            click.echo(json.dumps(info.to_json(), ensure_ascii=False))
        return
    if not found:
        click.echo("No tags yet: `semsearch tag PAPER... TAG` makes one.")
        return
    width = max(len(info.name) for info in found)
    click.echo(f"{'tag':<{width}}  {'for':>5}  {'against':>7}  last change")
    for info in found:
        gone = f"  ({len(info.missing)} no longer in the index)" if info.missing else ""
        click.echo(f"{info.name:<{width}}  {info.papers:>5}  {info.against:>7}  "
                   f"{info.changed}{gone}")


def _print_marks(engine, name: str, as_json: bool) -> None:
    marks = engine.reader.marks([name])
    present = engine.papers([m.paper for m in marks])
    for mark in marks:
        if as_json:
            click.echo(json.dumps({"tag": mark.tag, "id": mark.paper, "verdict": mark.verdict,
                                   "title": mark.title, "at": mark.at,
                                   "in_index": mark.paper in present}, ensure_ascii=False))
        else:
            gone = "" if mark.paper in present else "  (no longer in the index)"
            click.echo(f"{'+' if mark.verdict == 'for' else '-'} {mark.paper}  {mark.title}{gone}")


@main.command()
@click.argument("tag_names", nargs=-1, metavar="[TAG...]")
@k_option
@click.option("--since", metavar="DATE",
              help="Only papers that came into the index from then on: a date (2026-12-01), "
                   "or a span back from now (3d, 12h, 2w).")
@index_option
@json_option
def recommend(tag_names, k, since, index, as_json) -> None:
    """Papers ranked for your tags (all of them, or the TAGs named), each with the tag it is
    for and the tagged paper it is closest to. Papers tagged or seen are left out.

    A tag's ranking learns from its papers (and the ones marked --not), walks among their
    nearest papers, and reads the words they share. The score runs from 0 to 1 and reads the
    same across tags: 1 for a paper that is the tag's best by all three.
    """
    with Engine.open(index) as engine:
        hits = engine.recommend(list(tag_names) or None, k=k, since=since)
        _print_hits(hits, as_json)


@main.command()
@click.option("--since", metavar="DATE",
              help="Papers that came into the index from then on (2026-12-01, 3d), instead of "
                   "since the inbox was last read.")
@click.option("--from", "from_paths", multiple=True, type=click.Path(dir_okay=False),
              metavar="FILE", help="Rank the papers of FILE (any format `index` reads) without "
                                   "adding them to the index. Repeat for several.")
@click.option("-k", "--top", "k", default=20, show_default=True, type=click.IntRange(1, 1000),
              help="How many papers to show.")
@click.option("--peek", is_flag=True,
              help="Look without marking the papers shown as seen (they come again next time).")
@click.option("--output", type=click.Path(dir_okay=False), metavar="FILE",
              help="Also write a digest to FILE: self-contained HTML (.html) or Markdown (.md) "
                   "for a mail.")
@index_option
@json_option
def inbox(since, from_paths, k, peek, output, index, as_json) -> None:
    """Today's papers, ranked for your tags: the papers new since the inbox was last read,
    each shown once (then marked seen), a copy of a paper already seen or tagged (another
    version or source of it) folded into it.

    \b
      semsearch add today.txt && semsearch inbox
      semsearch inbox --since 3d --output digest.html
      semsearch inbox --from todays-listing.txt --peek
    """
    from semsearch.readers import ReadOptions, read_documents

    papers = None
    if from_paths:
        papers = list(read_documents(list(from_paths), options=ReadOptions(skip_bad=True)))
    with Engine.open(index) as engine:
        found = engine.inbox(since=since, papers=papers, k=k, peek=peek)
        name = engine.path.name
    if output:
        _write_digest(found, name, output)
    if as_json:
        for hit in found.hits:
            click.echo(json.dumps(hit.to_json(), ensure_ascii=False))
        return
    ranked = "ranked for your tags" if found.ranked else \
        "in the order they came (tag papers to have them ranked: semsearch tag PAPER... TAG)"
    more = found.new - len(found.hits) - len(found.folded)
    click.echo(f"{found.new} new since {found.since or 'the start'}; {len(found.hits)} shown, "
               f"{ranked}" + (f"; {len(found.folded)} folded into papers seen or shown"
                              if found.folded else "")
               + (f"; {more} more below them (-k shows more)" if more > 0 else ""))
    if found.hits:
        click.echo(format_table(found.hits, shutil.get_terminal_size((100, 24)).columns))
    if output:
        click.echo(f"digest written to {output}")


def _write_digest(found, name: str, output: str) -> None:
    from semsearch.reading.inbox import digest_html, digest_markdown

    path = Path(output)
    text = digest_html(found, name) if path.suffix.lower() in (".html", ".htm") else \
        digest_markdown(found, name)
    _write_file(path, text, "the digest")


def _write_file(path: Path, data: str | bytes, what: str) -> None:
    from semsearch import _fs

    try:
        _fs.write_atomically(path, data)
    except OSError as error:
        raise click.ClickException(f"{path}: cannot write {what} ({error.strerror})") from None


@main.command()
@click.option("--threshold", type=click.FloatRange(0, 1, min_open=True),
              default=DUPLICATE_THRESHOLD, show_default=True,
              help="Cosine from which two papers with alike titles are one paper. Lower "
                   "finds more (and more wrongly).")
@index_option
@json_option
def duplicates(threshold, index, as_json) -> None:
    """Groups of papers that are one paper under different ids: the same paper from two
    sources, an arXiv version and its journal copy, two exports of one library.

    Two papers are one if their vectors are nearly the same and their titles alike, if their
    titles are the same and their vectors close (an abstract cut short), or if their vectors
    are all but identical (a title reworded). `index` and `add` already drop papers whose
    title and abstract are exactly another's. With --json, one group a line with its
    papers' ids, titles and the lowest cosine that joined them.
    """
    with Engine.open(index) as engine, _ProgressBars() as progress:
        groups = engine.duplicates(threshold, progress=progress)
    for group in groups:
        if as_json:
            click.echo(json.dumps(group.to_json(), ensure_ascii=False))
            continue
        click.echo(f"{group.similarity:.3f}")
        for doc_id, title in zip(group.ids, group.titles):
            click.echo(f"  {doc_id}  {title}")
    if not as_json:
        click.echo(f"{len(groups)} group{'' if len(groups) == 1 else 's'} of near-duplicates"
                   + ("" if groups else f" at cosine {threshold}"))


@main.command(name="map")
@click.option("--rebuild", is_flag=True,
              help="Fit the map again: points move and regions may change (otherwise the map "
                   "fitted before, with papers added since placed onto it).")
@click.option("--output", "-o", type=click.Path(dir_okay=False), default=None,
              help="Write the map as a page of its own (.html, nothing fetched from "
                   "elsewhere) to open in a browser.")
@click.option("--png", type=click.Path(dir_okay=False), default=None,
              help="Write the map as a picture (.png), for a paper or a slide.")
@index_option
@json_option
def map_command(rebuild, output, png, index, as_json) -> None:
    """A map of the collection: every paper a point, near papers near each other, in
    regions labelled by their most distinctive words and their most central paper.

    The first call fits it (about a minute at a million papers; other writes wait) and
    keeps it with the index. It stays put: papers added later are placed onto it and no
    paper moves, until --rebuild (or `reindex`) fits it again. `semsearch serve` shows it in
    the page's Map view.
    """
    from semsearch.overview import drawing

    with Engine.open(index) as engine, _ProgressBars() as progress:
        had_map = engine.info().map_fitted is not None
        found = engine.map(rebuild=rebuild, progress=progress)
        if output:
            _write_file(Path(output), drawing.page(found, engine.path.name, engine.papers),
                        "the map")
        if png:
            _write_file(Path(png), drawing.picture(found), "the map's picture")
    if as_json:
        click.echo(json.dumps({"papers": len(found.ids), "fitted": found.fitted,
                               "fitted_papers": found.fitted_papers,
                               "placed_since": found.placed_since,
                               "regions": [region.to_json() for region in found.regions]},
                              ensure_ascii=False))
    else:
        if rebuild or not had_map:
            click.echo(f"Fitted a map of {len(found.ids):,} papers: {len(found.regions)} regions")
        else:
            click.echo(f"The map of {len(found.ids):,} papers (fitted {found.fitted[:16]}; "
                       f"{found.placed_since:,} placed onto it since): {len(found.regions)} "
                       f"regions")
        for region in sorted(found.regions, key=lambda r: -r.papers):
            click.echo(f"  {region.papers:>8,}  {region.label}  (e.g. {region.central_title})")
    for path in (output, png):
        if path:
            click.echo(f"Wrote {path}", err=True)


@main.command()
@index_option
@json_option
def info(index, as_json) -> None:
    """What an index holds: size, model, index type, where it lives."""
    import dataclasses

    with Engine.open(index) as engine:
        details = engine.info()
    if as_json:
        click.echo(json.dumps(dataclasses.asdict(details)))
        return
    changed = details.changed_since_build
    params = ", ".join(f"{k} {v}" for k, v in details.index_params.items()) or "none (exact)"
    probe_kinds = {"titles": "fragments of titles embedded as queries",
                   "given": "the query vectors given to the build",
                   "documents": "document vectors moved away from themselves"}
    recall = (f"recall@10 {details.tuned_recall_at_10:.3f} against exact search, on "
              f"{details.recall_probes:,} held-out probes "
              f"({probe_kinds.get(details.recall_probe_kind, 'of an earlier kind')})"
              if details.tuned_recall_at_10 is not None else "exact: every query sees every paper")
    rows = [("index", details.path), ("papers", f"{details.count:,}"),
            ("model", f"{details.model} ({details.dimension} dimensions, {details.metric})"),
            ("embedded", "int8 (--quantized)" if details.quantized else "fp32"),
            ("vector index", f"{details.index_type}; {params}"), ("tuned", recall),
            ("segments", f"{details.segments} ({details.segments_in_vector_index} in the vector "
                         f"index, the rest searched exactly)"),
            ("since trained", f"{changed['added']:,} added, {changed['removed']:,} removed "
                              "(`semsearch reindex` re-trains)"),
            ("map", f"fitted {details.map_fitted}" if details.map_fitted else
             "none yet (`semsearch map` fits one)"),
            ("built", details.created), ("last change", details.updated),
            ("on disk", _size(details.bytes_on_disk)),
            ("format", str(details.format_version))]
    width = max(len(label) for label, _ in rows)
    for label, value in rows:
        click.echo(f"{label:<{width}}  {value}")


def _size(count: int) -> str:
    for unit in ("bytes", "KB", "MB", "GB"):
        if count < 1000 or unit == "GB":
            return f"{count:,.0f} {unit}" if unit == "bytes" else f"{count:,.1f} {unit}"
        count /= 1000
    return ""


@main.command()
@click.argument("paper")
@index_option
@json_option
def show(paper, index, as_json) -> None:
    """Print one paper whole: title, authors, year, categories, id, link and abstract.

    PAPER is an id, a title, or the start of one (a short name such as "MM-Embed").
    """
    with Engine.open(index) as engine:
        document = engine.get(paper)
    if as_json:
        click.echo(json.dumps(document.to_json(), ensure_ascii=False))
        return
    width = min(shutil.get_terminal_size((100, 24)).columns, 100) - 1
    metadata = document.metadata
    click.echo(click.style(document.title or "(no title)", bold=True))
    rows = [("id", document.id), ("also", ", ".join(metadata.get("aliases") or [])),
            ("authors", ", ".join(metadata.get("authors") or [])),
            ("year", str(metadata.get("year") or "")),
            ("categories", ", ".join(metadata.get("categories") or [])),
            ("tags", ", ".join(metadata.get("tags") or [])), ("link", document.link or "")]
    for label, value in rows:
        if value:
            click.echo(f"{label + ':':<12}{value}")
    click.echo()
    click.echo(textwrap.fill(document.abstract, width, break_on_hyphens=False)
               if document.abstract
               else "(no abstract: this paper is searched by its title)")


@main.command()
@index_option
@click.option("--sample", is_flag=True,
              help="Index the two bundled feed pages first if the index does not exist yet.")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on. Any other than this machine's own (127.0.0.1, ::1) "
                   "needs --token.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535))
@click.option("--token", default=None, metavar="TOKEN",
              help="Every request must carry it (Authorization: Bearer TOKEN, or ?token=TOKEN "
                   "once, to open the page): 16 or more letters, digits, '-', '_', '.', '~'. "
                   "Default: $SEMSEARCH_TOKEN.")
@click.option("--no-token", is_flag=True,
              help="Serve another address without a token: anyone who reaches it can search "
                   "and read the index.")
@click.option("--workers", type=click.IntRange(1, 64), default=None,
              help="Requests answered side by side, each by an engine of its own (each holds "
                   "the query model and the vector index once). Default: one a core, from 2 "
                   "to 4.")
def serve(index, sample, host, port, token, no_token, workers) -> None:
    """Serve an index over HTTP: a page for browsing papers at http://HOST:PORT/, and a JSON
    API (GET /api/search?q=..., POST /api/like, GET /api/papers/ID, /api/info, /api/facets;
    described at /openapi.json and /docs).

    \b
      semsearch serve --sample          # the bundled pages, at http://127.0.0.1:8000/
      semsearch serve --index mine --port 8080
      semsearch serve --host 0.0.0.0 --token "$(openssl rand -hex 16)"

    The model and the index load once for each of --workers engines. A write by another
    process (`semsearch add`, `remove`, `index`) is seen by the next request, without a
    restart; a request sees the index as it was before a write or after it, never in between.
    """
    import ipaddress
    import re

    import uvicorn

    from semsearch import config
    from semsearch.server import create_app

    token = token or config.server_token()
    if token is not None and not re.fullmatch(r"[A-Za-z0-9._~-]{16,}", token):
        raise click.BadParameter("16 or more letters, digits, '-', '_', '.' or '~'",
                                 param_hint="--token")
    try:
        local = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        local = False
    if not local and token is None and not no_token:
        raise click.UsageError(f"serving {host} lets other machines in: give --token TOKEN "
                               f"(or --no-token to serve it open)")
    engine = Engine(index)
    if sample and not engine.exists:
        from semsearch.data import sample_paths
        from semsearch.readers import read_documents

        with _ProgressBars() as progress:
            report = engine.build(read_documents([str(p) for p in sample_paths()]),
                                  progress=progress)
        click.echo(f"Indexed {report.indexed} papers into {engine.path} in "
                   f"{report.seconds:.1f} s")
    engine = Engine.open(index)
    app = create_app(engine, token=token, warm_up=True, any_host=not local and token is None,
                     workers=workers)
    address = f"http://{'[' + host + ']' if ':' in host else host}:{port}/"
    click.echo(f"Serving {engine.info().count:,} papers from {engine.path} at {address}"
               + (" (open it with ?token=YOUR-TOKEN once)" if token else "")
               + " (Ctrl-C stops)")
    sys.stdout.flush()  # seen now, in a log or a pipe too, not when the server stops
    uvicorn.run(app, host=host, port=port, log_level="warning")


@main.command(name="eval")
@click.argument("collection", type=click.Path(file_okay=False, exists=True))
@click.option("--mode", type=click.Choice(MODES + ("all",)), default=DEFAULT_MODE,
              show_default=True, help="Search mode to measure; 'all' measures each in turn.")
@click.option("--split", default="test", show_default=True,
              help="Which qrels/<split>.tsv to score against (tune on train, report test).")
@model_option
@click.option("--index", "-i", "index", default=None, metavar="NAME|PATH",
              help="Measure an index you built of the collection's corpus, instead of the "
                   "one eval builds and keeps.")
@json_option
def evaluate(collection, mode, split, model, index, as_json) -> None:
    """Measure search quality on COLLECTION, a folder in BEIR layout.

    COLLECTION holds corpus.jsonl, queries.jsonl and qrels/<split>.tsv. The corpus is indexed
    once (under the index root, reused while the corpus and model are unchanged; --index takes
    one of your own), every judged query is run, and nDCG@10, recall@10, recall@100 and
    MRR@10 are reported.
    """
    from semsearch.evaluation import (cached_engine, evaluate as run_evaluation,
                                      load_collection, require_corpus)

    loaded = load_collection(collection, split)
    if index is not None:
        engine = Engine.open(index, model=model)
        require_corpus(engine, loaded)
    else:
        with _ProgressBars() as progress:
            engine = cached_engine(loaded, model=model, progress=progress)
    modes = ["lexical", "dense", "hybrid"] if mode == "all" else [mode]
    results = [run_evaluation(engine, loaded, each) for each in modes]
    if as_json:
        for result in results:
            click.echo(json.dumps(result.to_json()))
        return
    names = list(results[0].metrics)
    click.echo(f"{loaded.name}, {split} split, {results[0].queries} judged queries")
    click.echo(f"{'mode':<8}" + "".join(f"{name:>12}" for name in names))
    for result in results:
        click.echo(f"{result.mode:<8}" + "".join(f"{result.metrics[n]:>12.4f}" for n in names))


def _decoded(handle) -> str:
    """The text of a query file, or one line naming it if it is not UTF-8. Only what a query
    can hold is read (a file of gigabytes is not); a longer one is said to be cut."""
    import codecs

    data = handle.read(4 * MAX_QUERY_CHARS + 4)
    more = bool(handle.read(1))
    try:
        text = codecs.getincrementaldecoder("utf-8-sig")().decode(data, final=not more)
    except UnicodeDecodeError as error:
        name = "standard input" if handle.name in ("-", "<stdin>") else handle.name
        raise click.ClickException(f"{name}: bytes that are not UTF-8 at byte "
                                   f"{error.start + 1}") from None
    if more or len(text.strip()) > MAX_QUERY_CHARS:
        click.echo(f"note: the query was cut to its first {MAX_QUERY_CHARS:,} characters",
                   err=True)
    return text


def _print_hits(hits: Iterable, as_json: bool) -> None:
    hits = list(hits)
    if as_json:
        for hit in hits:
            click.echo(json.dumps(hit.to_json(), ensure_ascii=False))
        return
    if not hits:
        click.echo("No results.")
        return
    click.echo(format_table(hits, shutil.get_terminal_size((100, 24)).columns))


#: where a result's title, details and explanation start
_INDENT = 4 + 2 + 6 + 2


def format_table(hits: list, width: int) -> str:
    """Rank, score and title, wrapped to the terminal's width; under each title its id (never
    cut: it is what `show`, `like` and `remove` take), year and first author, and its
    explanation when there is one."""
    text_width = max(20, width - _INDENT - 1)
    indent = " " * _INDENT
    lines = [f"{'rank':>4}  {'score':>6}  title"]
    for hit in hits:
        wrapped = textwrap.wrap(hit.title or "(no title)", text_width) or [""]
        lines.append(f"{hit.rank:>4}  {hit.score:>6.3f}  {wrapped[0]}")
        lines.extend(indent + line for line in wrapped[1:])
        lines.append(indent + " · ".join(_details(hit)))
        if hit.explanation:
            quoted = f"\u201c{hit.explanation.sentence}\u201d ({hit.explanation.sentence_score:.2f})"
            lines.extend(textwrap.wrap(quoted, text_width + _INDENT, initial_indent=indent,
                                       subsequent_indent=indent))
            words = ", ".join(hit.explanation.matched_terms) or "none"
            cosine = f"; cosine {hit.cosine:.3f}" if hit.cosine is not None else ""
            lines.append(f"{indent}words matched: {words}{cosine}")
        if hit.reason is not None and hit.reason.tag:
            why = (f"for \u201c{hit.reason.tag}\u201d, like \u201c{hit.reason.closest_title}"
                   f"\u201d ({hit.reason.similarity:.2f})")
            lines.extend(textwrap.wrap(why, text_width + _INDENT, initial_indent=indent,
                                       subsequent_indent=indent))
        if hit.reason is not None and hit.reason.folded:
            lines.append(f"{indent}also as: {', '.join(hit.reason.folded)}")
    return "\n".join(lines)


def _details(hit) -> list[str]:
    """The id, then the year and first author where the source gave them."""
    details = [hit.id]
    if year := hit.metadata.get("year"):
        details.append(str(year))
    if authors := hit.metadata.get("authors") or []:
        first = str(authors[0])
        last = first.split(",")[0].strip() if "," in first else first.split()[-1]
        details.append(last + (" et al." if len(authors) > 1 else ""))
    return details


class _ProgressBars:
    """Progress of long work on stderr, each stage with its rate and the time left: tqdm bars
    on a terminal; elsewhere (a log file, a pipe) a line per stage every LOG_EVERY seconds,
    so a build of hours run under nohup is never silent for long."""

    LOG_EVERY = 30.0
    #: units other than papers
    UNITS = {"checksums": "B"}

    def __init__(self) -> None:
        self._bars: dict = {}
        self._terminal = sys.stderr.isatty()
        self._times: dict[str, tuple[float, float]] = {}  # stage: (started, last line)

    def __enter__(self) -> _ProgressBars:
        return self

    def __exit__(self, *exc) -> None:
        for bar in self._bars.values():
            bar.close()

    def __call__(self, stage: str, done: int, total: int | None) -> None:
        if self._terminal:
            self._bar(stage, done, total)
        else:
            self._line(stage, done, total)

    def _bar(self, stage: str, done: int, total: int | None) -> None:
        from tqdm import tqdm

        if stage not in self._bars:
            unit = self.UNITS.get(stage, "doc")
            self._bars[stage] = tqdm(total=total, desc=stage, unit=unit, file=sys.stderr,
                                     unit_scale=unit == "B", leave=False)
        bar = self._bars[stage]
        bar.update(done - bar.n)

    def _line(self, stage: str, done: int, total: int | None) -> None:
        import time

        from tqdm import tqdm

        now = time.monotonic()
        started, last = self._times.setdefault(stage, (now, now))
        if now - last < self.LOG_EVERY:
            return
        self._times[stage] = (started, now)
        unit = self.UNITS.get(stage, "doc")
        shape = ("{desc}: {n_fmt}/{total_fmt} ({percentage:.0f}%), {rate_fmt}, {remaining} left"
                 if total else "{desc}: {n_fmt}, {rate_fmt}, {elapsed} so far")
        click.echo(tqdm.format_meter(done, total, now - started, prefix=stage, unit=unit,
                                     unit_scale=unit == "B", unit_divisor=1024,
                                     bar_format=shape), err=True)


def run() -> None:
    """The `semsearch` command: ``main``, then the process ends without the interpreter's
    teardown. Every command has committed and synced what it wrote by the time it returns, so
    once its output is flushed there is nothing left to do but free memory (the model, the
    vector index), which the system does at once and the interpreter slowly: a one-shot
    search would spend that time on nothing."""
    try:
        main()
        code = 0
    except SystemExit as done:
        code = done.code
    if code is not None and not isinstance(code, int):
        print(code, file=sys.stderr)
        code = 1
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except BrokenPipeError:  # the reader went away (`| head`): what it read was complete
        pass
    os._exit(code or 0)


if __name__ == "__main__":
    run()
