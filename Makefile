# Two commands on a fresh machine: `make demo` and `make test`. Each sets up .venv itself;
# a second run skips installs whose inputs (pyproject.toml, this Makefile) have not changed.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip --disable-pip-version-check -q
HASH   := $(shell cat pyproject.toml Makefile | sha256sum | cut -c1-16)
BASE_STAMP := $(VENV)/.installed-base-$(HASH)
DEV_STAMP  := $(VENV)/.installed-dev-$(HASH)
# Offline by default: no model or data set is fetched from a hub at run time.
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: demo test install base bench bench-recbole wheel-check clean help

help:
	@echo "make demo     set up .venv and run the end-to-end demo on the embedded world"
	@echo "make test     set up .venv (with the dev extra) and run the test suite"
	@echo "make install  set up .venv with the project and its dev extra"
	@echo "make bench    also install the peer libraries used by benchmarks/"
	@echo "make bench-recbole  RecBole (LightGCN peer of benchmark topk) in its own .venv-recbole"
	@echo "make wheel-check  build the wheel, install it into a fresh venv, run it outside the repository"

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)

# Each install step adds its duration to $(VENV)/.install-seconds (the demo report lists it apart from the stages).
ADD_INSTALL_TIME = echo $$(( $$(date +%s) - $$(cat $(VENV)/.install-start) + $$(cat $(VENV)/.install-seconds 2>/dev/null || echo 0) )) > $(VENV)/.install-seconds.tmp && mv $(VENV)/.install-seconds.tmp $(VENV)/.install-seconds && echo "installs so far: $$(cat $(VENV)/.install-seconds) s"

$(BASE_STAMP): $(VENV)/bin/python
	rm -f $(VENV)/.installed-base-* $(VENV)/.install-seconds
	date +%s > $(VENV)/.install-start
	# torch first: the pinned CPU wheel; a looser request may pull a multi-GB CUDA build.
	$(PIP) install torch==2.13.0
	$(PIP) install -e '.[serve]'
	# Its metadata pulls torchvision (broken beside torch 2.13); we only read its network file and weights.
	$(PIP) install --no-deps facial-emotion-recognition==0.3.4
	@$(ADD_INSTALL_TIME)
	touch $@

$(DEV_STAMP): $(BASE_STAMP)
	rm -f $(VENV)/.installed-dev-*
	date +%s > $(VENV)/.install-start
	$(PIP) install -e '.[serve,dev,multilingual,ray]'
	@$(ADD_INSTALL_TIME)
	touch $@

base: $(BASE_STAMP)
install: $(DEV_STAMP)

demo: $(BASE_STAMP)
	$(VENV)/bin/aigcrec demo

test: $(DEV_STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

bench: $(DEV_STAMP)
	$(PIP) install -e '.[serve,dev,multilingual,ray,bench]'

# RecBole 1.2.1 needs numpy < 2, pandas < 2.3 and scipy < 1.12 (its LightGCN builds a dok_matrix with
# _update): pins that cannot sit beside aigcrec's, so it gets its own environment, run in a subprocess by
# aigcrec.topk.peers (recbole_lightgcn). Same CPU torch wheel as the main venv.
RECBOLE_VENV ?= .venv-recbole
bench-recbole: $(RECBOLE_VENV)/.stamp

$(RECBOLE_VENV)/.stamp:
	$(PYTHON) -m venv $(RECBOLE_VENV)
	$(RECBOLE_VENV)/bin/pip install -q torch==2.13.0
	$(RECBOLE_VENV)/bin/pip install -q recbole==1.2.1 numpy==1.26.4 pandas==2.2.3 scipy==1.11.4
	touch $@

wheel-check:
	.ci/wheel_check.sh

clean:
	rm -rf $(VENV) $(RECBOLE_VENV) runs .pytest_cache
