"""The console page in a real browser (Debian's chromium, chromium-driver and
python3-selenium): log in through the form, switch a running node's dispatch
strategy, see the new strategy and the charts take new points. The
screenshot it takes is docs/console.md's (SHARD_CONSOLE_SCREENSHOT=path)."""

import os
import shutil
import tempfile
import time
import unittest

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait

from console_support import ACCOUNTS, Client, Node

import support  # noqa: E402

CHROMEDRIVER = "/usr/bin/chromedriver"
WAIT_S = 15


def setUpModule():
    global node
    support.setUpModule()
    node = Node(metrics=False)


def tearDownModule():
    node.stop()
    support.tearDownModule()


@unittest.skipUnless(shutil.which("chromium") and os.path.exists(CHROMEDRIVER),
                     "needs chromium and chromium-driver (ops/setup.sh installs them)")
class Browser(unittest.TestCase):

    def setUp(self):
        self.profile = tempfile.TemporaryDirectory()
        options = webdriver.ChromeOptions()
        options.binary_location = shutil.which("chromium")
        for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                     "--window-size=1400,1300", "--user-data-dir=" + self.profile.name):
            options.add_argument(flag)
        self.browser = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
        self.browser.set_page_load_timeout(WAIT_S)
        self.url = "http://127.0.0.1:%d" % node.port

    def tearDown(self):
        self.browser.quit()
        self.profile.cleanup()

    def wait(self, predicate, what):
        try:
            return WebDriverWait(self.browser, WAIT_S, poll_frequency=0.02).until(lambda b: predicate())
        except Exception:
            self.fail("the page never showed %s; node log:\n%s" % (what, node.output()[-3000:]))

    def text(self, element_id):
        return self.browser.find_element(By.ID, element_id).text

    def pushes(self):
        return int(self.browser.execute_script("return Number(document.body.dataset.pushes || 0)"))

    def chart_points(self):
        return self.browser.execute_script("return frameChart.data.labels.length")

    def log_in(self, name):
        self.browser.get(self.url + "/")
        self.wait(lambda: self.browser.current_url.endswith("/login"), "the login page for a visitor")
        self.browser.find_element(By.ID, "name").send_keys(name)
        self.browser.find_element(By.ID, "password").send_keys(ACCOUNTS[name][1])
        self.browser.find_element(By.ID, "submit").click()
        self.wait(lambda: self.text("strategy_now") != "", "the statistics after the login")

    def test_an_operator_switches_the_strategy_and_sees_it_and_the_charts_move(self):
        self.log_in("ops")
        self.assertEqual(self.text("strategy_now"), "main_loop")
        self.wait(lambda: self.pushes() >= 3, "three pushes")
        points = self.chart_points()
        Select(self.browser.find_element(By.ID, "strategy")).select_by_value("pending_call")
        clicked = time.monotonic()
        self.browser.find_element(By.ID, "apply").click()
        self.wait(lambda: self.text("strategy_now") == "pending_call", "the new strategy")
        shown_s = time.monotonic() - clicked  # the figure is tools/bench/console_bench.py --browser's
        viewer = Client(node.port)
        viewer.login("view")
        self.assertEqual(viewer.get("/api/stats").json()["strategy"], "pending_call")  # on the node itself
        pushes = self.pushes()
        self.wait(lambda: self.pushes() >= pushes + 2, "two more pushes")
        self.assertGreater(self.chart_points(), points)
        self.assertIn("pending_call", self.browser.execute_script("return dispatchChart.data.datasets[0].label"))
        self.assertIn("set dispatch_strategy", node.output())
        print("strategy shown %.3f s after the click" % shown_s)
        path = os.environ.get("SHARD_CONSOLE_SCREENSHOT")
        if path:
            self.browser.save_screenshot(path)

    def test_a_wrong_password_shows_the_error_on_the_login_page(self):
        self.browser.get(self.url + "/login")
        self.browser.find_element(By.ID, "name").send_keys("ops")
        self.browser.find_element(By.ID, "password").send_keys("wrong")
        self.browser.find_element(By.ID, "submit").click()
        self.wait(lambda: self.text("error") == "wrong name or password", "the login error")


if __name__ == "__main__":
    unittest.main()
