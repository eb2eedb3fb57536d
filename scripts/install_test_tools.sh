#!/usr/bin/env bash
# The system programs some tests use, from Debian's packages, each installed only where it is missing:
#   chromium, chromium-driver                           report.html opened in a real browser (test_comparison.py)
#   texlive-latex-base, texlive-latex-recommended       report.py --latex compiled with pdflatex (test_reproducible_results.py)
#   postgresql                                          optuna workers on a real server (test_team_services.py)
# Where a package cannot be installed (no apt-get, not root and no password-less sudo, no network) it says so
# in one line and the tests that need it skip with a note; it never fails `make test`.
set -u
missing=()
command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1 \
    || missing+=(chromium chromium-driver)
command -v pdflatex >/dev/null 2>&1 && kpsewhich booktabs.sty >/dev/null 2>&1 \
    || missing+=(texlive-latex-base texlive-latex-recommended)
command -v initdb >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 \
    || missing+=(postgresql)
[ ${#missing[@]} -eq 0 ] && exit 0
skipped="the tests that need ${missing[*]} will be skipped"
if ! command -v apt-get >/dev/null 2>&1; then
    echo "note: no apt-get here: $skipped" >&2
    exit 0
fi
if [ "$(id -u)" -eq 0 ]; then
    as_root=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    as_root=(sudo -n)
else
    echo "note: installing packages needs root: $skipped" >&2
    exit 0
fi
echo "installing ${missing[*]} (for tests) ..." >&2
install() {
    DEBIAN_FRONTEND=noninteractive "${as_root[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}" \
        >/dev/null 2>&1
}
install || { "${as_root[@]}" apt-get update -q >/dev/null 2>&1 && install; } \
    || echo "note: apt-get could not install them: $skipped" >&2
exit 0
