# attention-zoo: `make help` lists the targets. Everything runs inside .venv, created on demand.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export ATTN_ZOO_DATA ?= $(if $(wildcard ../shared/data),../shared/data,data)
RUNS := $(or $(ATTN_ZOO_RUNS),runs)
# reproduce-* targets: BUDGET=cpu (default) is the budget of the committed results, about an hour
# or two on a 2-core CPU; BUDGET=paper is the paper's recipe (GPU advised).
BUDGET ?= cpu
preset = $(if $(filter paper,$(BUDGET)),$(1),$(if $(filter cpu,$(BUDGET)),$(1)_cpu,$(error BUDGET must be cpu or paper, not '$(BUDGET)')))
# the newest finished (status completed) run of an experiment under $(RUNS)
latest = $(patsubst %/metrics.json,%,$(lastword $(sort $(shell grep -l '"status": "completed"' $(wildcard $(RUNS)/$(1)/*/metrics.json) /dev/null 2>/dev/null))))

.DEFAULT_GOAL := help
.PHONY: help venv test lint test-slow train bench bench-resnet bench-cnn-attention bench-translation bench-transformer reproduce-resnet-cifar \
	reproduce-cbam reproduce-nonlocal reproduce-cnn-attention-converged reproduce-show-attend-tell reproduce-show-attend-tell-scenes bench-captioning \
	reproduce-seq2seq reproduce-seq2seq-long reproduce-rnnsearch reproduce-transformer reproduce-transformer-ablations reproduce-transformer-speedups reproduce-transformer-fast reproduce-transformer-tiny-en-de reproduce-transformer-fast-en-de reproduce-generalized-attention figure-bleu-by-length \
	reproduce-sagan feature-classifier bench-sagan bench-nonlocal-video reproduce-generalized-attention-vision reproduce-nonlocal-video results presets mutation data-cifar10 data-multi30k clean

help: ## list the targets
	@grep -E '^[a-zA-Z0-9_-]+:.*## ' $(MAKEFILE_LIST) | sed 's/[$$][$$]/$$/g' | awk -F':.*## ' '{printf "  %-24s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

venv: $(STAMP) ## create .venv and install the project with its test extras (idempotent)

TEST_WORKERS ?= auto
test: $(STAMP) lint ## the default test suite (fast; tiny generated data, no network, no ../shared), after lint; TEST_WORKERS=1 runs it serially
	$(PY) -m pytest -n $(TEST_WORKERS) --dist loadfile

lint: $(STAMP) ## ruff: lint and formatting check (`.venv/bin/ruff format .` fixes the formatting)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

test-slow: $(STAMP) ## the long tests marked slow (every README training command run with trainer=smoke among them), one worker per core
	$(PY) -m pytest -m slow -n $(TEST_WORKERS) --dist load

train: $(STAMP) ## a real training run end to end: ResNet-20 on CIFAR-10, CPU budget (~1.5 h on 2 cores)
	$(PY) -m attention_zoo.train experiment=resnet_cifar_cpu $(ARGS)

bench: bench-resnet bench-cnn-attention bench-translation bench-transformer bench-captioning bench-sagan bench-nonlocal-video ## all speed measurements below

bench-resnet: $(STAMP) ## CIFAR ResNet: training images/s, data-wait share, channels_last, torch.compile and bf16 autocast effects
	$(PY) scripts/bench_resnet.py --compile --bf16 $(ARGS)

bench-cnn-attention: $(STAMP) ## ResNet-20 with each configs/block option: params, FLOPs, train/eval images/s, overhead vs plain
	$(PY) scripts/bench_cnn_attention.py $(ARGS)

bench-captioning: $(STAMP) ## Show-Attend-Tell on scenes and (when its data is there) Flickr8k: training and decoding captions/s, the feature cache's effect
	$(PY) scripts/bench_captioning.py $(if $(call latest,show_attend_tell_scenes),--checkpoint $(call latest,show_attend_tell_scenes)/best.pt) $(ARGS)
	$(if $(wildcard $(ATTN_ZOO_DATA)/flickr8k),$(PY) scripts/bench_captioning.py --experiment show_attend_tell_cpu \
		$(if $(call latest,show_attend_tell_cpu),--checkpoint $(call latest,show_attend_tell_cpu)/best.pt) $(ARGS))

bench-translation: $(STAMP) ## seq2seq/RNNsearch CPU presets: training tokens/s, padding share, decoding sentences/s
	$(PY) scripts/bench_translation.py $(foreach e,seq2seq_cpu rnnsearch_cpu,--experiment $(e) \
		$(if $(call latest,$(e)),--checkpoint $(e)=$(call latest,$(e))/best.pt)) $(ARGS)

bench-transformer: $(STAMP) ## Transformer CPU preset: training tok/s vs torch.nn.Transformer, decoding with/without KV cache
	$(PY) scripts/bench_transformer.py $(if $(call latest,transformer_cpu),--checkpoint $(call latest,transformer_cpu)/averaged.pt) $(ARGS)

reproduce-resnet-cifar: $(STAMP) ## He et al. 2016 ResNet-20 (BUDGET=cpu: 20 epochs, ~75 min; BUDGET=paper: 164 epochs)
	$(PY) -m attention_zoo.train experiment=$(call preset,resnet_cifar) $(ARGS)

reproduce-seq2seq: $(STAMP) ## Sutskever et al. 2014 LSTM seq2seq on Multi30k de-en (BUDGET=cpu ~1 h; BUDGET=paper 4x1000)
	$(PY) -m attention_zoo.train experiment=$(call preset,seq2seq) $(ARGS)

reproduce-rnnsearch: $(STAMP) ## Bahdanau et al. 2015 RNNsearch on Multi30k de-en (BUDGET=cpu ~40 min; BUDGET=paper 1000 units)
	$(PY) -m attention_zoo.train experiment=$(call preset,rnnsearch) $(ARGS)
	$(MAKE) figure-bleu-by-length

reproduce-transformer: $(STAMP) ## Vaswani et al. 2017 on Multi30k de-en then en-de (BUDGET=cpu ~1 h each; BUDGET=paper base)
	$(PY) -m attention_zoo.train experiment=$(call preset,transformer) $(ARGS)
	$(PY) -m attention_zoo.train experiment=$(call preset,transformer_en_de) $(ARGS)

# The speed-up ladder (issue 27): transformer_cpu with one change at a time (configs/speedup), each
# trained for the same SPEEDUP_EPOCHS (the same tokens seen; minutes follow from each row's measured speed).
# Not a time budget: this VM's speed drifts by up to 40% within an hour (experiments/transformer.md).
SPEEDUP_EPOCHS ?= 10
SPEEDUPS ?= none pre_ln short_warmup big_batch bf16
reproduce-transformer-speedups: $(STAMP) ## transformer_cpu with one speed-up at a time (pre-LN, short warmup, big batches, bf16 autocast), SPEEDUP_EPOCHS (10) each (~45 min a row); resumable
	$(PY) scripts/run_variants.py --collect --experiment transformer_cpu --group speedup --variants $(SPEEDUPS) \
		-- trainer.epochs=$(SPEEDUP_EPOCHS) $(ARGS)

# time-to reads the run just made: the shell's $(ls ...) runs after training; make's `latest` would expand before it.
reproduce-transformer-fast: $(STAMP) ## transformer_fast_cpu: the ladder's helpful changes combined (pre-LN, short warmup, bf16), 20 epochs (~1 h on CPU); then minutes to 35 validation BLEU
	$(PY) -m attention_zoo.train experiment=transformer_fast_cpu $(ARGS)
	$(PY) scripts/translation_report.py time-to $$(ls -d $(RUNS)/transformer_fast_cpu/*/ | tail -1) --bleu 35

reproduce-transformer-tiny-en-de: $(STAMP) ## en->de with Wu et al. 2021's Transformer-Tiny recipe (4+4, d 128, dropout 0.3; 64 epochs, ~2.7 h on CPU)
	$(PY) -m attention_zoo.train experiment=transformer_tiny_en_de_cpu $(ARGS)

reproduce-transformer-fast-en-de: $(STAMP) ## en->de with transformer_fast_cpu's recipe, dropout 0.3 and 36 epochs (transformer_fast_en_de_cpu; ~1.7 h on CPU)
	$(PY) -m attention_zoo.train experiment=transformer_fast_en_de_cpu $(ARGS)

reproduce-seq2seq-long: $(STAMP) ## seq2seq_cpu for 28 epochs instead of 10 (~2 h on CPU)
	$(PY) -m attention_zoo.train experiment=seq2seq_long_cpu $(ARGS)

TRANSFORMER_ABLATIONS := none heads_1 heads_4 heads_16 dk_16 no_dropout no_label_smoothing learned_positions pre_ln
reproduce-transformer-ablations: $(STAMP) ## Vaswani Table 3 style rows on the Transformer preset, the base row and one run per configs/ablation option (resumable; ~1 h each on CPU; BUDGET=cpu runs are collected and results/transformer.md's section remade)
	$(PY) scripts/run_variants.py --experiment $(call preset,transformer) --group ablation \
		--variants $(TRANSFORMER_ABLATIONS) $(if $(filter cpu,$(BUDGET)),--collect --tables results/transformer_ablations.spec.json) $(if $(ARGS),-- $(ARGS))

ATTENTION_VARIANTS := all_terms encdec_without_e1 self_without_e1 transformer encdec_e1_only self_e2_only
ZHU_SEEDS ?= 0 1 2
reproduce-generalized-attention: $(STAMP) ## Zhu et al. 2019 attention-term study, one run per configs/attention variant and ZHU_SEEDS (default 0 1 2, seeds pair the variants); resumable; BUDGET=cpu ~25 min each, page remade after each run
	$(PY) scripts/run_variants.py --collect --experiment $(call preset,generalized_attention) --group attention \
		--variants $(ATTENTION_VARIANTS) --seeds $(ZHU_SEEDS) $(if $(filter cpu,$(BUDGET)),--tables results/generalized_attention_seeds.spec.json) $(if $(ARGS),-- $(ARGS))

# The CNN-attention grids share experiment $(call preset,cifar_attention) and its baseline runs (block=none).
# Resumable: run the same command again to go on; finished (variant, seed) runs are skipped.
# CIFAR-100: ARGS=data=cifar100.
SEEDS ?= 0 1 2
# each grid runs its main comparison over all seeds first, then the ablations, so a grid stopped
# part-way has whole main comparisons
CBAM_MAIN := none se cbam
CBAM_ABLATIONS := cbam_avg_pool cbam_max_pool cbam_kernel3 cbam_spatial_channel cbam_parallel
NONLOCAL_MAIN := none nonlocal_embedded
NONLOCAL_ABLATIONS := nonlocal_gaussian nonlocal_dot nonlocal_concat nonlocal_stage1 nonlocal_stage3 nonlocal_2blocks nonlocal_6blocks
# $(call block_grid,VARIANTS): one resumable run_variants.py grid of `block` options over $(SEEDS)
block_grid = $(PY) scripts/run_variants.py --experiment $(call preset,cifar_attention) --group block \
	--variants $(1) --seeds $(SEEDS) $(if $(ARGS),-- $(ARGS))
reproduce-cbam: $(STAMP) ## Woo et al. 2018: ResNet-20 plain vs SE vs CBAM and its ablations, SEEDS="0 1 2" (BUDGET=cpu: 4 epochs, 10-25 min a run)
	$(call block_grid,$(CBAM_MAIN))
	$(call block_grid,$(CBAM_ABLATIONS))

reproduce-nonlocal: $(STAMP) ## Wang et al. 2018: ResNet-20 plain vs the 4 non-local instantiations and placements, SEEDS="0 1 2"
	$(call block_grid,$(NONLOCAL_MAIN))
	$(call block_grid,$(NONLOCAL_ABLATIONS))

GENERALIZED_VISION = none generalized_all generalized_no_e1 generalized_e1 generalized_position generalized_e3 deformable deformable_e3
reproduce-generalized-attention-vision: $(STAMP) ## Zhu et al. 2019 on images: E1..E4 subsets and deformable conv in ResNet-20, SEEDS="0 1 2" (BUDGET=cpu: the 4-epoch budget; resumable; collected into results/runs)
	$(PY) scripts/run_variants.py --collect --experiment $(call preset,cifar_attention) --group block \
		--variants $(GENERALIZED_VISION) --seeds $(SEEDS) $(if $(ARGS),-- $(ARGS))

reproduce-nonlocal-video: $(STAMP) ## Wang et al. 2018 on video: C2D with 0, 1 and 5 spacetime non-local blocks on the generated moving-shapes clips, SEEDS="0 1 2" (resumable; collected into results/runs)
	$(PY) scripts/run_variants.py --collect --experiment nonlocal_video_cpu --group video_nonlocal --variants none nl1 nl5 \
		--seeds $(SEEDS) $(if $(ARGS),-- $(ARGS))

CONVERGED_SEEDS ?= 0 1 2 3 4
reproduce-cnn-attention-converged: $(STAMP) ## plain / SE / CBAM / 1 non-local block, 60 epochs bf16, 5 paired seeds (1-1.7 h a run on 2 cores with native bf16; resumable; finished runs collected into results/runs, pages remade)
	$(PY) scripts/run_variants.py --experiment cifar_attention_converged_cpu --group block \
		--variants none se cbam nonlocal_embedded --seeds $(CONVERGED_SEEDS) --collect \
		--tables results/cbam_converged.spec.json results/nonlocal_converged.spec.json $(if $(ARGS),-- $(ARGS))

CAPTION_SEEDS ?= 0 1 2
reproduce-show-attend-tell: $(STAMP) ## Xu et al. 2015 on Flickr8k: BUDGET=cpu soft/hard/no attention x CAPTION_SEEDS, resumable; BUDGET=paper the paper's VGG-19 soft then hard (GPU)
ifeq ($(BUDGET),paper)
	$(PY) -m attention_zoo.train experiment=show_attend_tell $(ARGS)
	$(PY) -m attention_zoo.train experiment=show_attend_tell_hard $(ARGS)
else
	$(PY) scripts/run_variants.py --collect --experiment show_attend_tell_cpu --group captioner --variants soft none hard \
		--seeds $(CAPTION_SEEDS) $(if $(ARGS),-- $(ARGS))
endif

reproduce-show-attend-tell-scenes: $(STAMP) ## Show-Attend-Tell on the generated scenes set, soft then hard attention (runs on a CPU)
	$(PY) -m attention_zoo.train experiment=show_attend_tell_scenes $(ARGS)
	$(PY) -m attention_zoo.train experiment=show_attend_tell_scenes_hard $(ARGS)

# The feature space of the GAN metrics: ResNet-20 of resnet_cifar_converged_cpu, seed 0, 68 epochs on all
# 50k training images in bf16 (88.61% test, results/resnet_cifar.md), exported to one file. Pinned: the
# SAGAN numbers use it, and each SAGAN record names the sha256 of the run's weights it was exported from.
FEATURE_CLASSIFIER := $(RUNS)/feature_classifier/resnet20_cifar10.pt
FEATURE_CLASSIFIER_RUN := experiment=resnet_cifar_converged_cpu seed=0 trainer.epochs=68 data.val_size=0 trainer.precision=bf16
feature-classifier: $(STAMP) ## the CIFAR-10 classifier whose features score the GANs: trains resnet_cifar_converged_cpu (68 epochs on 50k, bf16, seed 0) unless a finished run exists (~1.8 h on an AMX CPU), exports it to runs/feature_classifier/resnet20_cifar10.pt
	@test -f $(FEATURE_CLASSIFIER) || { \
		finished="grep -l '\"status\": \"completed\"' $(RUNS)/resnet_cifar_converged_cpu/*/metrics.json 2>/dev/null $(foreach o,$(FEATURE_CLASSIFIER_RUN),| xargs -r grep -l '\"$(o)\"') | sort | tail -n 1"; \
		run=$$(eval "$$finished"); \
		test -n "$$run" || { $(PY) -m attention_zoo.train $(FEATURE_CLASSIFIER_RUN) && run=$$(eval "$$finished"); }; \
		$(PY) -m attention_zoo.portable $$(dirname $$run) -o $(FEATURE_CLASSIFIER); }
	@echo "feature classifier: $(FEATURE_CLASSIFIER) ($$(sha256sum $(FEATURE_CLASSIFIER) | cut -c1-16))"

GAN_SEEDS ?= 0 1 2
reproduce-sagan: feature-classifier ## Zhang et al. 2019 Table 1 at 32x32: no attention / attention at 8x8 / at 16x16 x GAN_SEEDS (BUDGET=cpu ~1 h a run; resumable; finished runs collected into results/runs)
	$(PY) scripts/run_variants.py --collect --experiment $(call preset,sagan) --group gan_attention --variants none feat8 feat16 \
		--seeds $(GAN_SEEDS) $(if $(ARGS),-- $(ARGS))

bench-nonlocal-video: $(STAMP) ## C2D with 0 / 1 / 5 spacetime non-local blocks: seconds per training step, minutes per epoch and per run
	$(PY) scripts/bench_nonlocal_video.py $(ARGS)

bench-sagan: $(STAMP) ## SAGAN at the CPU preset: G/D parameters and FLOPs, D+G iterations/s and sampling images/s per attention placement
	$(PY) scripts/bench_sagan.py $(ARGS)

figure-bleu-by-length: $(STAMP) ## Bahdanau Fig. 2 from the newest seq2seq and rnnsearch runs of $$BUDGET
	$(if $(and $(call latest,$(call preset,seq2seq)),$(call latest,$(call preset,rnnsearch))), \
		$(PY) scripts/translation_report.py by-length --run "seq2seq (no attention)=$(call latest,$(call preset,seq2seq))" \
			--run "RNNsearch=$(call latest,$(call preset,rnnsearch))" --out $(RUNS)/bleu_by_source_length_$(BUDGET), \
		@echo "Fig. 2 needs a finished run of both $(call preset,seq2seq) and $(call preset,rnnsearch) under $(RUNS)/")

presets: $(STAMP) ## results/presets.md: every experiment preset beside its paper, batches measured on $$ATTN_ZOO_DATA
	$(PY) scripts/presets.py

mutation: $(STAMP) ## mutation testing of attention/, models/, tasks/decoding.py (mutmut 2; many hours on 2 cores; resumable on any clone from results/mutation/mutmut-cache.sql) -> results/mutation.md
	$(PY) -m pip install --quiet 'mutmut>=2.5,<3'
	$(PY) scripts/mutation.py run $(if $(ONLY),--only $(ONLY))
	$(PY) scripts/mutation.py report

results: $(STAMP) ## regenerate results/*.md tables from the committed run records
	$(PY) scripts/results.py table results/*.spec.json

data-cifar10: $(STAMP) ## download CIFAR-10 (torchvision, checksummed) into $$ATTN_ZOO_DATA
	$(PY) scripts/download_data.py cifar10 --root $(ATTN_ZOO_DATA)

data-multi30k: $(STAMP) ## download Multi30k task 1 raw files (sha256-checked) into $$ATTN_ZOO_DATA
	$(PY) scripts/download_data.py multi30k --root $(ATTN_ZOO_DATA)

clean: ## remove caches and test leftovers (keeps runs/ and .venv)
	rm -rf .pytest_cache .cache build src/*.egg-info
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
