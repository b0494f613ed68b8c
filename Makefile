# attention-zoo: `make help` lists the targets. Everything runs inside .venv, created on demand.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export ATTN_ZOO_DATA ?= $(if $(wildcard ../shared/data),../shared/data,data)

.DEFAULT_GOAL := help
.PHONY: help venv test test-slow train bench reproduce-resnet-cifar results data-cifar10 clean

help: ## list the targets
	@grep -E '^[a-zA-Z0-9_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-24s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

venv: $(STAMP) ## create .venv and install the project with its test extras (idempotent)

test: $(STAMP) ## the default test suite (fast; tiny generated data, no network, no ../shared)
	$(PY) -m pytest

test-slow: $(STAMP) ## the long tests marked slow
	$(PY) -m pytest -m slow

train: $(STAMP) ## a real training run end to end: ResNet-20 on CIFAR-10, CPU budget (~1.5 h on 2 cores)
	$(PY) -m attention_zoo.train experiment=resnet_cifar_cpu $(ARGS)

bench: $(STAMP) ## training images/s, data-wait share and channels_last effect for the CIFAR ResNet
	$(PY) scripts/bench.py $(ARGS)

reproduce-resnet-cifar: $(STAMP) ## He et al. 2016 ResNet-20 recipe at paper scale (164 epochs; GPU advised)
	$(PY) -m attention_zoo.train experiment=resnet_cifar $(ARGS)

results: $(STAMP) ## regenerate results/*.md tables from the committed run records
	$(PY) scripts/results.py table results/*.spec.json

data-cifar10: $(STAMP) ## download CIFAR-10 (torchvision, checksummed) into $$ATTN_ZOO_DATA
	$(PY) scripts/download_data.py cifar10 --root $(ATTN_ZOO_DATA)

clean: ## remove caches and test leftovers (keeps runs/ and .venv)
	rm -rf .pytest_cache .cache build src/*.egg-info
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
