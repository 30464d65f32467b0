#!/usr/bin/env python3
"""Loads a page in headless Chromium and prints its rendered DOM once a
JavaScript condition holds: the browser check of the status page.

    browser-dom.py URL [--until JS] [--timeout S] [--screenshot OUT.png]
                       [--click SELECTOR] [--then-wait-for JS2 [--after-file F]]

It drives Chromium over the DevTools protocol on a pipe
(--remote-debugging-pipe: fd 3 in, fd 4 out, NUL-terminated JSON), so it
needs nothing beyond Python's standard library, and it keeps the page open
(server-sent events and all) while polling, unlike --dump-dom, which stops
at the load event. Exit 0 and the DOM on stdout when the condition held;
exit 1 and the last DOM on stdout (reason on stderr) at the timeout; exit 2
when Chromium is missing or fails.
"""
import argparse, base64, fcntl, json, os, shutil, subprocess, sys, tempfile, time


class Browser:
    def __init__(self, size, insecure=False):
        exe = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
        if not exe:
            print("chromium is missing: apt-get install -y chromium", file=sys.stderr)
            sys.exit(2)
        self.profile = tempfile.mkdtemp(prefix="gc-chromium-")
        to_chrome_r, self.to_chrome = os.pipe()
        self.from_chrome, from_chrome_w = os.pipe()
        # The child's fd 3 reads our commands, fd 4 writes its answers.
        def child_fds():
            # Moved out of the way first: either may already be 3 or 4.
            r, w = fcntl.fcntl(to_chrome_r, fcntl.F_DUPFD, 10), fcntl.fcntl(from_chrome_w, fcntl.F_DUPFD, 10)
            os.dup2(r, 3)
            os.dup2(w, 4)
        args = [exe, "--headless", "--disable-gpu", "--remote-debugging-pipe", "--hide-scrollbars",
                f"--window-size={size}", "--no-first-run", "--user-data-dir=" + self.profile]
        if insecure:
            args.append("--ignore-certificate-errors")
        if os.geteuid() == 0:
            args.append("--no-sandbox")
        self.proc = subprocess.Popen(args + ["about:blank"], preexec_fn=child_fds, pass_fds=(3, 4, to_chrome_r, from_chrome_w),
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        self.buffer = b""
        self.next_id = 0
        self.session = None

    def call(self, method, params=None, session=True, timeout=30):
        self.next_id += 1
        message = {"id": self.next_id, "method": method, "params": params or {}}
        if session and self.session:
            message["sessionId"] = self.session
        os.write(self.to_chrome, json.dumps(message).encode() + b"\0")
        deadline = time.time() + timeout
        while time.time() < deadline:
            while b"\0" not in self.buffer:
                chunk = os.read(self.from_chrome, 1 << 20)
                if not chunk:
                    raise RuntimeError("chromium exited")
                self.buffer += chunk
            raw, self.buffer = self.buffer.split(b"\0", 1)
            answer = json.loads(raw)
            if answer.get("id") == self.next_id:
                if "error" in answer:
                    raise RuntimeError(f"{method}: {answer['error']}")
                return answer.get("result", {})
        raise RuntimeError(f"{method}: no answer in {timeout} s")

    def open(self, url):
        target = self.call("Target.createTarget", {"url": "about:blank"}, session=False)["targetId"]
        self.session = self.call("Target.attachToTarget", {"targetId": target, "flatten": True}, session=False)["sessionId"]
        self.call("Page.enable")
        self.call("Page.navigate", {"url": url})

    def evaluate(self, expression):
        result = self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True})
        return result.get("result", {}).get("value")

    def dom(self):
        return self.evaluate("document.documentElement.outerHTML") or ""

    def close(self):
        try:
            self.call("Browser.close", session=False, timeout=5)
        except Exception:
            pass
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        shutil.rmtree(self.profile, ignore_errors=True)


def wait_for(browser, condition, deadline):
    while time.time() < deadline:
        try:
            if browser.evaluate(f"Boolean({condition})"):
                return True
        except RuntimeError:
            pass
        time.sleep(0.2)
    return False


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("--until", default="document.body && document.body.dataset.loaded === 'true'")
    parser.add_argument("--timeout", type=float, default=30)
    parser.add_argument("--screenshot")
    parser.add_argument("--window-size", default="1280,1100")
    parser.add_argument("--after-file", help="once --until holds, touch this file, then wait for --then-wait-for")
    parser.add_argument("--then-wait-for")
    parser.add_argument("--click", help="once --until holds, click the first element this CSS selector matches")
    parser.add_argument("--ignore-certificate-errors", action="store_true", help="for a test cluster's own CA")
    args = parser.parse_args()
    browser = Browser(args.window_size, args.ignore_certificate_errors)
    try:
        deadline = time.time() + args.timeout
        browser.open(args.url)
        ok = wait_for(browser, args.until, deadline)
        if ok and args.click:
            clicked = browser.evaluate(f"(() => {{ const e = document.querySelector({json.dumps(args.click)}); if (e) e.click(); return e !== null; }})()")
            if not clicked:
                print(f"nothing matches {args.click}", file=sys.stderr)
                ok = False
        if ok and args.then_wait_for:
            if args.after_file:
                open(args.after_file, "w").close()
            ok = wait_for(browser, args.then_wait_for, deadline)
        if args.screenshot:
            data = browser.call("Page.captureScreenshot", {"format": "png"})["data"]
            with open(args.screenshot, "wb") as f:
                f.write(base64.b64decode(data))
        sys.stdout.write(browser.dom())
        if not ok:
            print(f"condition did not hold within {args.timeout} s", file=sys.stderr)
            return 1
        return 0
    except RuntimeError as error:
        print(f"browser failed: {error}", file=sys.stderr)
        return 2
    finally:
        browser.close()


if __name__ == "__main__":
    sys.exit(main())
