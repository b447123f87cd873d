"""Offline by construction: importing the harness switches Hugging Face libraries offline, and loading a toy,
an uncached ``hf:`` and a ``path:`` model attempts no network connection even when the user set no variable."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from harness import OFFLINE_VARIABLES, force_offline

GUARDED_RUN = r'''
import json, socket, sys
attempts = []

def refuse(what):
    def call(*args, **kwargs):
        attempts.append(f"{what} {args!r:.200}")
        raise OSError(f"test guard: no network ({what})")
    return call

socket.socket.connect = refuse("connect")
socket.socket.connect_ex = refuse("connect_ex")
socket.getaddrinfo = refuse("getaddrinfo")
socket.create_connection = refuse("create_connection")

import os
from harness.models import ModelUnavailableError, load_model
env = {name: os.environ.get(name) for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_HUB_DISABLE_TELEMETRY")}
load_model("toy-llama", device="cpu")
try:
    load_model("hf:some-org/some-model", device="cpu")
    hf_error = None
except ModelUnavailableError as exc:
    hf_error = str(exc)

import shutil, torch
from transformers import AutoModelForCausalLM, LlamaConfig
from harness.models import TOY_TOKENIZER_DIR
out = sys.argv[1]
config = LlamaConfig(hidden_size=16, intermediate_size=32, num_hidden_layers=2, num_attention_heads=2,
                     num_key_value_heads=1, vocab_size=49152, max_position_embeddings=64)
AutoModelForCausalLM.from_config(config).save_pretrained(out)
shutil.copy(TOY_TOKENIZER_DIR / "tokenizer.json", out)
shutil.copy(TOY_TOKENIZER_DIR / "tokenizer_config.json", out)
load_model("path:" + out, device="cpu")
print("RESULT " + json.dumps({"attempts": attempts, "env": env, "hf_error": hf_error}))
'''


def test_loading_attempts_no_connection_without_offline_variables(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in OFFLINE_VARIABLES}
    env["HF_HUB_CACHE"] = str(tmp_path / "empty-hub-cache")
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[2])
    done = subprocess.run([sys.executable, "-c", GUARDED_RUN, str(tmp_path / "tiny")], check=False, env=env,
                          capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.split("RESULT ", 1)[1])
    assert result["attempts"] == []
    assert result["env"] == {name: "1" for name in OFFLINE_VARIABLES}
    hf_error = result["hf_error"]
    assert hf_error is not None and "not in the local Hugging Face cache" in hf_error and "\n" not in hf_error


def test_force_offline_keeps_true_values_and_overrides_others() -> None:
    environ = {"HF_HUB_OFFLINE": "0", "TRANSFORMERS_OFFLINE": "yes"}
    force_offline(environ)
    assert environ == {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "yes", "HF_HUB_DISABLE_TELEMETRY": "1"}
