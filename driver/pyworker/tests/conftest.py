import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))           # lmdrive_py
sys.path.insert(0, os.path.join(HERE, "fakes"))     # fake vllm, lmdeploy, tensorrt_llm

import pytest  # noqa: E402


class ListChannel:
    """Collects the events a TokenSink writes."""

    def __init__(self):
        self.events = []

    def write_line(self, line):
        self.events.append(json.loads(line))


@pytest.fixture
def channel():
    return ListChannel()


@pytest.fixture
def model_dir(tmp_path):
    """A model folder as the libraries read it; script sets the fake model."""
    def make(script=None, max_pos=4096, eos=(151645, 151643)):
        d = tmp_path / "model"
        d.mkdir(exist_ok=True)
        (d / "config.json").write_text(json.dumps({"model_type": "qwen2", "vocab_size": 151936, "max_position_embeddings": max_pos,
                                                   "eos_token_id": eos[0], "lmdrive_fake": script or {}}))
        (d / "generation_config.json").write_text(json.dumps({"eos_token_id": list(eos), "max_new_tokens": 2048}))
        return str(d)
    return make
