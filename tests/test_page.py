"""The page in a real headless browser (Debian's chromium, driven by Selenium), against a live
server: search as you type, open an abstract, "similar", like two papers and ask for more like
them, a year filter, the keyboard. Screenshots land in screenshots/ (page.png there is the one
the README shows, when copied to docs/)."""

import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import uvicorn

from semsearch import Engine, read_documents, sample_paths
from semsearch.documents import Document
from semsearch.server import create_app

from conftest import HashingEmbedder

SCREENSHOTS = Path(__file__).resolve().parents[1] / "screenshots"
CHROMIUM, DRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"


class LiveServer:
    """uvicorn serving an app on a free port of 127.0.0.1, in a thread of this process."""

    def __init__(self, app):
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0,
                                                    log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.05)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    def __exit__(self, *exc):
        self.server.should_exit = True
        self.thread.join(10)


@pytest.fixture(scope="module")
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    assert Path(CHROMIUM).exists() and Path(DRIVER).exists(), \
        "needs Debian's chromium and chromium-driver (the README's test command installs them)"
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                     "--window-size=1280,1000", "--disable-gpu"):
        options.add_argument(argument)
    driver = webdriver.Chrome(options=options, service=Service(DRIVER))  # no driver download
    driver.implicitly_wait(0)
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def sample_site(tmp_path_factory):
    """The bundled sample, indexed with the real model, served."""
    path = tmp_path_factory.mktemp("page") / "sample"
    Engine(path).build(read_documents([str(p) for p in sample_paths()]))
    with LiveServer(create_app(Engine.open(path), warm_up=True)) as address:
        yield address


@pytest.fixture(scope="module")
def dated_site(tmp_path_factory):
    """Papers with years, categories and authors (the sample has none)."""
    path = tmp_path_factory.mktemp("page") / "dated"
    papers = [Document(f"2{year % 100:02d}0.0000{i}", f"Graph networks study {year}-{i}",
                       f"Graph neural networks for molecules, study {i} of {year}.",
                       {"year": year, "categories": ["cs.LG" if i % 2 else "q-bio.BM"],
                        "authors": [f"Author{i} Lastname{year}"]})
              for year in (2018, 2019, 2020, 2021) for i in range(3)]
    Engine(path, embedder=HashingEmbedder()).build(papers)
    with LiveServer(create_app(Engine.open(path, embedder=HashingEmbedder()))) as address:
        yield address


@pytest.fixture(scope="module")
def duplicated_site(tmp_path_factory):
    """A few papers, one of them twice (an export with its abstract a little longer)."""
    path = tmp_path_factory.mktemp("page") / "duplicated"
    papers = [Document(f"p{i}", title, f"{title}. {words}.") for i, (title, words) in
              enumerate([("Graph attention networks", "attention over graph neighbourhoods"),
                         ("Protein folding at scale", "structure prediction of residues"),
                         ("Speech recognition in noise", "acoustic models for audio")])]
    papers.append(Document("p0-copy", "Graph attention networks!",
                           "Graph attention networks. Attention over graph neighbourhoods, too."))
    Engine(path, embedder=HashingEmbedder()).build(papers)
    with LiveServer(create_app(Engine.open(path, embedder=HashingEmbedder()))) as address:
        yield address


@pytest.fixture(scope="module")
def mapped_site(tmp_path_factory):
    """Papers on four topics, their map fitted."""
    path = tmp_path_factory.mktemp("page") / "mapped"
    topics = {"graph": "graph neural networks nodes edges", "protein": "protein folding "
              "residues structure", "speech": "speech audio acoustic recognition",
              "image": "image pixels convolutional vision"}
    papers = [Document(f"{name}-{i}", f"{name.title()} study {i}: {words}",
                       f"We look at {words} in case {i}.")
              for i in range(15) for name, words in topics.items()]
    engine = Engine(path, embedder=HashingEmbedder())
    engine.build(papers)
    engine.map()
    engine.close()
    with LiveServer(create_app(Engine.open(path, embedder=HashingEmbedder()))) as address:
        yield address


def wait_for(condition, seconds=20.0):
    deadline = time.monotonic() + seconds
    while True:
        value = condition()
        if value:
            return value
        assert time.monotonic() < deadline, "the page did not get there in time"
        time.sleep(0.05)


def results(browser):
    from selenium.webdriver.common.by import By

    return browser.find_elements(By.CSS_SELECTOR, "#results > li")


def status(browser) -> str:
    return browser.find_element("id", "status").text


def result_ids(browser) -> list[str]:
    return [item.get_attribute("data-id") for item in results(browser)]


def test_search_read_similar_like_and_more(browser, sample_site):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    browser.get(sample_site + "/")
    wait_for(lambda: "papers" in browser.find_element("id", "about").text)
    box = browser.find_element("id", "q")
    box.send_keys("retrieval augmented generation with knowledge graphs")  # no Enter: as you type
    wait_for(lambda: status(browser).startswith("20 papers for"))
    first = results(browser)[0]
    assert "rag" in first.text.lower() or "retrieval" in first.text.lower()

    abstract = first.find_element(By.CSS_SELECTOR, ".abstract")
    assert not abstract.is_displayed()
    first.find_element(By.CSS_SELECTOR, "button.toggle").click()
    wait_for(abstract.is_displayed)
    assert len(abstract.text) > 100
    SCREENSHOTS.mkdir(exist_ok=True)
    browser.save_screenshot(str(SCREENSHOTS / "page.png"))

    liked_id = first.get_attribute("data-id")
    first.find_element(By.CSS_SELECTOR, "button.similar").click()
    wait_for(lambda: status(browser).startswith("20 papers like"))
    assert liked_id not in result_ids(browser)

    chosen = results(browser)[:2]
    chosen_ids = [item.get_attribute("data-id") for item in chosen]
    for item in chosen:
        item.find_element(By.CSS_SELECTOR, "button.like").click()
    assert len(browser.find_elements(By.CSS_SELECTOR, "#liked li")) == 2
    assert all(item.find_element(By.CSS_SELECTOR, "button.like").get_attribute("aria-pressed")
               == "true" for item in chosen)
    browser.find_element("id", "more").click()
    wait_for(lambda: status(browser).startswith("20 papers like your 2 liked papers"))
    shown = result_ids(browser)
    assert shown and not set(chosen_ids) & set(shown)
    browser.save_screenshot(str(SCREENSHOTS / "more-like-these.png"))

    # the keyboard: "/" comes back to the search box, Enter searches
    browser.find_element(By.TAG_NAME, "body").send_keys("/")
    assert browser.switch_to.active_element == box
    box.send_keys(Keys.CONTROL, "a")
    box.send_keys("multimodal benchmark", Keys.ENTER)
    wait_for(lambda: status(browser).startswith("20 papers for “multimodal benchmark”"))


def test_explanations_mark_the_closest_sentence_and_the_words(browser, sample_site):
    from selenium.webdriver.common.by import By

    browser.get(sample_site + "/")
    wait_for(lambda: browser.find_elements(By.CSS_SELECTOR, "#mode option"))
    browser.find_element("id", "explain").click()
    box = browser.find_element("id", "q")
    box.send_keys("knowledge graph retrieval\n")
    wait_for(lambda: "for “knowledge graph retrieval”" in status(browser)
             and browser.find_elements(By.CSS_SELECTOR, "#results .why"))
    first = results(browser)[0]
    first.find_element(By.CSS_SELECTOR, "button.toggle").click()
    assert first.find_element(By.CSS_SELECTOR, ".abstract mark.near").text
    words = [m.text.lower() for m in first.find_elements(By.CSS_SELECTOR, ".why mark")]
    assert any(word.startswith(("knowledge", "graph", "retriev")) for word in words)


def test_a_year_filter_keeps_only_that_year(browser, dated_site):
    from selenium.webdriver.support.ui import Select

    browser.get(dated_site + "/")
    wait_for(lambda: len(browser.find_elements("css selector", "#category option")) == 3)
    assert browser.find_element("id", "year-from").get_attribute("placeholder") == "2018"
    browser.find_element("id", "q").send_keys("graph networks\n")
    wait_for(lambda: len(results(browser)) == 12)
    browser.find_element("id", "year-from").send_keys("2019")
    browser.find_element("id", "year-to").send_keys("2019\t")
    wait_for(lambda: len(results(browser)) == 3)
    assert all("2019" in item.text for item in results(browser))
    Select(browser.find_element("id", "category")).select_by_value("cs.LG")
    wait_for(lambda: len(results(browser)) == 1)
    for box, year in (("year-from", "2030"), ("year-to", "2031\t")):
        browser.find_element("id", box).clear()
        browser.find_element("id", box).send_keys(year)
    wait_for(lambda: "2030..2031" in status(browser))
    assert "no paper" in status(browser)
    assert browser.find_element("id", "status").get_attribute("class") == "error"
    assert not results(browser)


def test_the_page_fits_a_phone(browser, sample_site):
    browser.set_window_size(400, 860)
    try:
        browser.get(sample_site + "/?q=protein")
        wait_for(lambda: results(browser))
        width = browser.execute_script("return document.documentElement.scrollWidth")
        assert width <= 400
        browser.save_screenshot(str(SCREENSHOTS / "phone.png"))
    finally:
        browser.set_window_size(1280, 1000)


def test_a_very_long_address_is_refused_by_the_live_server(sample_site):
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(sample_site + "/api/search?q=" + "x" * 100_000, timeout=30)
    assert 400 <= refused.value.code < 500


def test_tags_kept_by_the_server_recommendations_and_the_inbox(browser, sample_site):
    """For a tag in one click, kept across a reload; the tags panel with its counts;
    recommendations for a tag with their reasons; the inbox with Mark read."""
    from selenium.webdriver.common.by import By

    browser.get(sample_site + "/?q=retrieval+augmented+generation+knowledge+graphs")
    wait_for(lambda: len(results(browser)) == 20)
    browser.find_element("id", "tag-name").send_keys("graph rag")
    first, second = results(browser)[:2]
    tagged = [first.get_attribute("data-id"), second.get_attribute("data-id")]
    first.find_element(By.CSS_SELECTOR, "button.for").click()
    wait_for(lambda: first.find_element(By.CSS_SELECTOR, "button.for")
             .get_attribute("aria-pressed") == "true")
    second.find_element(By.CSS_SELECTOR, "button.for").click()
    wait_for(lambda: "2 · 0" in browser.find_element("id", "tags").text)
    results(browser)[5].find_element(By.CSS_SELECTOR, "button.against").click()
    wait_for(lambda: "2 · 1" in browser.find_element("id", "tags").text)

    browser.refresh()  # the tags live on the server, not in the page
    wait_for(lambda: len(results(browser)) == 20 and "graph rag" in
             browser.find_element("id", "tags").text)
    wait_for(lambda: [item.find_element(By.CSS_SELECTOR, "button.for")
                      .get_attribute("aria-pressed") for item in results(browser)[:2]]
             == ["true", "true"])

    browser.find_element(By.CSS_SELECTOR, "#tags .tag-link").click()
    wait_for(lambda: status(browser).startswith("20 papers recommended for “graph rag”"))
    assert not set(tagged) & set(result_ids(browser))
    reason = results(browser)[0].find_element(By.CSS_SELECTOR, ".reason").text
    assert reason.startswith("for “graph rag”, like “")
    browser.save_screenshot(str(SCREENSHOTS / "recommend.png"))

    browser.find_element("id", "inbox").click()
    wait_for(lambda: "ranked for your tags" in status(browser))
    before = result_ids(browser)
    assert before and not set(tagged) & set(before)
    results(browser)[0].find_element(By.CSS_SELECTOR, "button.read").click()
    wait_for(lambda: len(results(browser)) == len(before) - 1)
    browser.find_element("id", "inbox").click()
    wait_for(lambda: "ranked for your tags" in status(browser))
    assert before[0] not in result_ids(browser)  # read papers do not come back
    browser.save_screenshot(str(SCREENSHOTS / "inbox.png"))


def test_duplicates_are_listed_and_each_paper_opens(browser, duplicated_site):
    from selenium.webdriver.common.by import By

    browser.get(duplicated_site)
    browser.find_element("id", "duplicates").click()
    wait_for(lambda: status(browser) == "1 group of papers that are one paper")
    [group] = results(browser)
    assert "p0 (first in the index)" in group.text and "p0-copy" in group.text
    group.find_elements(By.CSS_SELECTOR, "button.linkish")[1].click()
    wait_for(lambda: status(browser) == "The paper p0-copy")
    assert result_ids(browser) == ["p0-copy"]


def test_the_map_view_marks_results_shows_titles_and_opens_papers(browser, mapped_site):
    from selenium.webdriver.common.action_chains import ActionChains

    browser.get(mapped_site + "/?q=protein+folding")
    wait_for(lambda: results(browser))
    started = time.monotonic()
    browser.find_element("id", "map-button").click()
    wait_for(lambda: status(browser).startswith("The map of 60 papers in"))
    opened = time.monotonic() - started
    wait_for(lambda: browser.execute_script("return window.semsearchMap.highlightedCount")
             == len(results(browser)))
    point = browser.execute_script("return window.semsearchMap.pointAt(0)")
    canvas = browser.find_element("css selector", "#map canvas")
    origin = canvas.location
    actions = ActionChains(browser)
    actions.move_to_element_with_offset(canvas, 0, 0).perform()  # the centre, then the point
    centre = {"x": origin["x"] + canvas.size["width"] / 2,
              "y": origin["y"] + canvas.size["height"] / 2}
    ActionChains(browser).move_by_offset(point["x"] - centre["x"],
                                         point["y"] - centre["y"]).perform()
    tip = browser.find_element("css selector", "#map .map-tip")
    # papers of a topic lie close together here: the tip names the paper nearest the pointer
    wait_for(lambda: tip.is_displayed() and " study " in tip.text)
    ActionChains(browser).click().perform()
    wait_for(lambda: status(browser).startswith("The paper ") and len(results(browser)) == 1)
    browser.save_screenshot(str(SCREENSHOTS / "map.png"))
    print(f"map view opened in {opened:.2f} s")
