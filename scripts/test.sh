#!/usr/bin/env bash
# Installs everything the tests need (Debian packages, a virtual environment, a PostgreSQL
# server on this machine) and runs ruff and the test suite. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v soffice >/dev/null 2>&1 || need+=(libreoffice-writer-nogui)
command -v pdftotext >/dev/null 2>&1 || need+=(poppler-utils)
# LibreOffice only recommends its Python bridge; PDF letters go through one running office with it.
dpkg -s python3-uno >/dev/null 2>&1 || need+=(python3-uno)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
if [ ${#need[@]} -gt 0 ]; then
  sudo_=""; [ "$(id -u)" -eq 0 ] || sudo_="sudo"
  echo "Installing Debian packages: ${need[*]}"
  $sudo_ apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_ apt-get install -y -qq "${need[@]}" >/dev/null
fi

[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip >/dev/null 2>&1 || true
.venv/bin/python -m pip install -q -e ".[test]"

# A throwaway PostgreSQL server for the archive tests, on a private socket folder.
eval "$(bash scripts/postgres.sh start)"

.venv/bin/ruff check senforms tests bench
.venv/bin/lint-imports
.venv/bin/mypy
set +e
.venv/bin/python -m pytest -q "$@"
status=$?
set -e
bash scripts/postgres.sh stop >/dev/null 2>&1 || true
exit $status
