#!/usr/bin/env bash
# Headless Chromium and its WebDriver, for the test that opens report.html in a real browser
# (tests/test_comparison.py): Debian's chromium and chromium-driver packages. Where they cannot be
# installed (no apt-get, not root and no password-less sudo, no network), it says so and the test skips.
set -u
if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "note: no apt-get here: the headless-browser test will be skipped" >&2
    exit 0
fi
if [ "$(id -u)" -eq 0 ]; then
    as_root=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    as_root=(sudo -n)
else
    echo "note: installing chromium needs root: the headless-browser test will be skipped" >&2
    exit 0
fi
echo "installing chromium and chromium-driver (headless-browser test) ..." >&2
install() { DEBIAN_FRONTEND=noninteractive "${as_root[@]}" apt-get install -y -q chromium chromium-driver >/dev/null 2>&1; }
install || { "${as_root[@]}" apt-get update -q >/dev/null 2>&1 && install; } \
    || echo "note: chromium could not be installed: the headless-browser test will be skipped" >&2
exit 0
