"""The mask explorer of notebook 02 in a real front end (what nbval cannot see: widgets).

A JupyterLab server is started on localhost (hermetic config/runtime/settings folders under a
temporary directory, the notebook copied there so the committed one is never touched), Debian's
headless Chromium is driven with Selenium + Debian's chromedriver (no browser download), and:

1. notebook 02 opens and its kernel starts;
2. the cells above the explorer cell (tagged ``explorer``) and the explorer cell itself run;
3. the explorer renders: its dropdowns, its text line and a figure (a PNG inside the widget);
4. choosing another mask in the dropdown redraws the figure (the image changes) and the text.

Skipped when chromium / chromedriver / selenium are missing, unless ``SELCONV_REQUIRE_BROWSER=1``
(CI sets it), in which case their absence is a failure.
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
NOTEBOOK = Path(os.environ.get("SELCONV_BROWSER_NOTEBOOK", REPO / "notebooks" / "02_masks.ipynb"))
CHROMIUM = os.environ.get("SELCONV_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("SELCONV_CHROMEDRIVER", "/usr/bin/chromedriver")
REQUIRED = os.environ.get("SELCONV_REQUIRE_BROWSER", "") not in ("", "0")
TOKEN = "selconv-browser-test"


def _missing() -> str | None:
    if not Path(CHROMIUM).exists():
        return f"no Chromium at {CHROMIUM} (apt-get install chromium)"
    if not Path(CHROMEDRIVER).exists():
        return f"no chromedriver at {CHROMEDRIVER} (apt-get install chromium-driver)"
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "the selenium Python package is not installed (pip install selenium)"
    return None


def _need_browser():
    why = _missing()
    if why:
        if REQUIRED:
            pytest.fail(f"SELCONV_REQUIRE_BROWSER is set but {why}")
        pytest.skip(why)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_http(url: str, proc: subprocess.Popen, log: Path, timeout: float = 90) -> None:
    t0 = time.time()
    while time.time() - t0 < timeout:
        if proc.poll() is not None:
            raise RuntimeError(f"JupyterLab exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise TimeoutError(f"JupyterLab did not answer {url} in {timeout} s:\n{log.read_text()[-3000:]}")


@pytest.fixture
def lab_server(tmp_path):
    """A JupyterLab server on localhost serving a copy of notebook 02 (outputs cleared)."""
    _need_browser()
    from selconv_lite.features.cache import default_cache_dir

    root = tmp_path / "lab"
    root.mkdir()
    nb = json.loads(NOTEBOOK.read_text())
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            cell["outputs"], cell["execution_count"] = [], None
    (root / NOTEBOOK.name).write_text(json.dumps(nb))
    env = dict(os.environ)
    env.pop("SELCONV_HEADLESS", None)  # this time a widget front end IS attached
    env.update({
        "SELCONV_CACHE": str(Path(default_cache_dir()).resolve()),  # the shared feature cache
        "SELCONV_OUTPUT": str(tmp_path / "outputs"),
    })
    with jupyterlab(root, tmp_path, TOKEN, env, ["--LabApp.expose_app_in_browser=True"]) as (url, log):
        yield url, root, log


@contextlib.contextmanager
def jupyterlab(root: Path, tmp_path: Path, token: str, env: dict, extra_args=()):
    """A JupyterLab server on localhost serving ``root`` (also its working folder), its config,
    runtime, settings and workspace folders under ``tmp_path``; yields its URL and log file and
    stops it on exit. ``env`` is the server's environment (copied)."""
    env = dict(env)
    env.update({
        "JUPYTER_CONFIG_DIR": str(tmp_path / "cfg"),
        "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"),
        "JUPYTERLAB_SETTINGS_DIR": str(tmp_path / "settings"),
        "JUPYTERLAB_WORKSPACES_DIR": str(tmp_path / "workspaces"),
        "PYDEVD_DISABLE_FILE_VALIDATION": "1",
    })
    port = _free_port()
    log = tmp_path / "jupyterlab.log"
    cmd = [sys.executable, "-m", "jupyterlab", "--no-browser", f"--port={port}", "--ip=127.0.0.1",
           f"--ServerApp.root_dir={root}", f"--IdentityProvider.token={token}",
           "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
           "--LabApp.news_url=None", "--LabApp.extension_manager=readonly",
           "--ServerApp.open_browser=False", *extra_args]
    if hasattr(os, "geteuid") and os.geteuid() == 0:  # CI containers run as root
        cmd.append("--allow-root")
    with open(log, "w") as logf:
        proc = subprocess.Popen(cmd, cwd=root, env=env, stdout=logf, stderr=subprocess.STDOUT)
    try:
        _wait_http(f"http://127.0.0.1:{port}/api/status?token={token}", proc, log)
        yield f"http://127.0.0.1:{port}", log
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


@pytest.fixture
def browser(tmp_path):
    _need_browser()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", "--window-size=1400,1000",
                 f"--user-data-dir={tmp_path / 'chromium-profile'}"):
        opts.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    try:
        yield driver
    finally:
        driver.quit()


# The notebook panel, found among the main-area widgets (a headless window may have no focus,
# so app.shell.currentWidget can be null).
JS_FIND_PANEL = """
function findPanel(name) {
  const app = window.jupyterapp;
  if (!app) return null;
  for (const w of app.shell.widgets('main')) {
    if (w.context && w.context.path && w.context.path.endsWith(name) && w.content) return w;
  }
  return null;
}
"""

JS_RUN_TO_EXPLORER = JS_FIND_PANEL + """
const name = arguments[0];
const done = arguments[arguments.length - 1];
(async () => {
  try {
    const app = window.jupyterapp;
    const panel = findPanel(name);
    if (!panel) { done('ERROR: notebook panel not found'); return; }
    app.shell.activateById(panel.id);
    await panel.context.ready;
    await panel.sessionContext.ready;
    const nb = panel.content;
    const idx = nb.widgets.findIndex(c => (c.model.getMetadata('tags') || []).includes('explorer'));
    if (idx < 0) { done('ERROR: no cell tagged explorer'); return; }
    nb.activeCellIndex = idx;
    await app.commands.execute('notebook:run-all-above');
    nb.activeCellIndex = idx;
    await app.commands.execute('notebook:run-cell');
    done('ok ' + idx);
  } catch (e) { done('ERROR: ' + e); }
})();
"""


def _wait(driver, cond, timeout, what):
    from selenium.webdriver.support.ui import WebDriverWait

    try:
        return WebDriverWait(driver, timeout, poll_frequency=0.5).until(lambda d: cond(d))
    except Exception as exc:
        errors = driver.find_elements("css selector", ".jp-OutputArea-output[data-mime-type*=error]")
        detail = "\n".join(e.text[:1500] for e in errors) or "(no error output in the notebook)"
        raise AssertionError(f"timed out after {timeout} s waiting for {what}; {detail}") from exc


def test_explorer_renders_and_mask_change_updates_figure(lab_server, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    if not NOTEBOOK.exists():
        pytest.fail(f"{NOTEBOOK} is missing")
    base, root, log = lab_server
    browser.set_script_timeout(600)
    browser.get(f"{base}/lab/tree/{NOTEBOOK.name}?token={TOKEN}&reset")
    _wait(browser, lambda d: d.execute_script(
        JS_FIND_PANEL + "const p = findPanel(arguments[0]); return !!(p && p.content.widgets.length);",
        NOTEBOOK.name), 120, "JupyterLab to open the notebook")
    result = browser.execute_async_script(JS_RUN_TO_EXPLORER, NOTEBOOK.name)
    assert result.startswith("ok"), result

    # 1. the explorer renders: dropdowns, text, and a figure inside the widget
    explorer = _wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, ".selconv-mask-explorer"),
                     300, "the explorer widget to render")[0]
    img_css = ".selconv-mask-explorer .selconv-figure img"
    img = _wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, img_css), 120,
                "the explorer's figure")[0]
    before_src = img.get_attribute("src")
    assert before_src.startswith("data:image/png"), before_src[:60]
    label = explorer.find_element(By.CSS_SELECTOR, ".selconv-label")
    assert "MAX mask" in label.text, label.text
    selects = {cls: explorer.find_element(By.CSS_SELECTOR, f".selconv-{cls} select")
               for cls in ("image", "mask", "layer")}
    assert [o.text for o in Select(selects["mask"]).options][:3] == ["MAX mask", "SUM mask", "SIFT mask"]

    # 2. changing the mask redraws the figure and the text
    Select(selects["mask"]).select_by_visible_text("SUM mask")
    _wait(browser, lambda d: "SUM mask" in d.find_element(
        By.CSS_SELECTOR, ".selconv-mask-explorer .selconv-label").text, 60, "the text to update")
    _wait(browser, lambda d: any(
        e.get_attribute("src") not in (None, before_src) for e in d.find_elements(By.CSS_SELECTOR, img_css)),
        60, "the figure to change after choosing the SUM mask")
    new = browser.find_elements(By.CSS_SELECTOR, img_css)
    assert len(new) == 1, f"expected one figure in the explorer, found {len(new)}"
    assert new[0].get_attribute("src").startswith("data:image/png")
