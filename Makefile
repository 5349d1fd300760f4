# The README's two commands: `make demo` (main job on a built-in sample) and `make test`.
# Both create the virtual environment on first use and reinstall when pyproject.toml changes.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# The CUDA extra only where an NVIDIA driver answers; everything else runs on the CPU.
CUDA_EXTRA := $(shell nvidia-smi -L >/dev/null 2>&1 && echo ",cuda")
# Models come from the team's shared folder beside the checkout when it exists, else they are
# downloaded into the user's cache (~/.cache/depthcam) with a checksum.
SHARED_MODELS := $(wildcard ../shared/models)
MODELS_ENV := $(if $(SHARED_MODELS),DEPTHCAM_MODELS=$(abspath $(SHARED_MODELS)),)

.PHONY: demo test ptx bench clean

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[test,plot$(CUDA_EXTRA)]"
	touch $@

demo: $(VENV)/.installed
	$(MODELS_ENV) $(VENV)/bin/depthcam demo

test: $(VENV)/.installed
	$(MODELS_ENV) $(PY) -m pytest -q

# Compile every CUDA source to PTX for Hopper (what CI's tests also do).
ptx:
	for f in kernels/*.cu; do nvcc -ptx -arch=sm_90 -o /dev/null $$f || exit 1; done

bench: $(VENV)/.installed
	$(MODELS_ENV) $(VENV)/bin/depthcam bench --json out/bench.json

clean:
	rm -rf $(VENV) out
