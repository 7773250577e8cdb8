"""Hugging Face folders (`hf:PATH`), built offline from configs with random weights."""

import json
import shutil

import numpy as np
import pytest
import torch

from conversion import huggingface, minilm
from conversion.huggingface import SentenceEmbedding, pooling_of
from conversion.spec import OutputSpec, SpecError
from tests.conversion import zoo


@pytest.fixture(scope="module")
def bert_folder(tmp_path_factory):
    return zoo.bert_classifier_folder(tmp_path_factory.mktemp("bert"))


@pytest.fixture(scope="module")
def vit_folder(tmp_path_factory):
    return zoo.vit_classifier_folder(tmp_path_factory.mktemp("vit"))


def test_a_sequence_classifier_serves_its_logits_behind_its_tokenizer(bert_folder):
    loaded = huggingface.load(bert_folder)
    assert loaded.outputs == (OutputSpec("logits", "classification", ("batch", 3)),)
    assert [str(s) for s in loaded.inputs] == [
        "input_ids:int64:batch,sequence",
        "attention_mask:int64:batch,sequence",
    ]
    assert loaded.text.tokenizer_file == bert_folder / "tokenizer.json"
    assert loaded.text.buckets == (16, 32, 64)  # max_position_embeddings 64
    assert loaded.transformer is None


def test_fusion_loads_eager_attention_and_the_hint_comes_from_the_config(bert_folder):
    loaded = huggingface.load(bert_folder, fuse_attention=True)
    assert loaded.module.config._attn_implementation == "eager"
    hint = loaded.transformer
    assert (hint.model_type, hint.num_heads, hint.hidden_size) == ("bert", 2, 32)


def test_a_text_file_is_tokenized_as_served_with_labels_by_name(bert_folder, tmp_path):
    loaded = huggingface.load(bert_folder)
    path = zoo.text_file(tmp_path / "v.txt", 40, seed=2, labels=("negative", "positive"))
    data = loaded.read(path, 16)
    assert len(data) == 40 and sorted(set(data.labels)) == [0, 2]
    lengths = [b["input_ids"].shape[1] for b in data.batches]
    assert lengths == sorted(lengths) and set(lengths) <= {16, 32, 64}
    assert all(b["attention_mask"].dtype == np.int64 for b in data.batches)


def test_calibration_text_is_padded_to_one_shape(bert_folder, tmp_path):
    path = zoo.text_file(tmp_path / "c.txt", 40, seed=1)
    data = huggingface.load(bert_folder).read(path, 16, True)
    assert len({b["input_ids"].shape[1] for b in data.batches}) == 1
    assert len(data.equal_shaped(8)) == 5  # 16 + 16 + 8 rows


def test_labels_on_some_lines_only_are_refused(bert_folder, tmp_path):
    path = tmp_path / "v.txt"
    path.write_text("positive\tA fine day.\nNo label here.\n")
    with pytest.raises(SpecError, match="every sample needs a label when one has one"):
        huggingface.load(bert_folder).read(path, 16)


def test_a_text_model_reads_text_not_a_folder(bert_folder, tmp_path):
    with pytest.raises(SpecError, match="a text model reads a text file, one sample a line"):
        huggingface.load(bert_folder).read(tmp_path, 16)


def test_a_folder_without_config_or_tokenizer_is_refused(bert_folder, tmp_path):
    with pytest.raises(SpecError, match=r"no config\.json"):
        huggingface.load(tmp_path)
    copy = shutil.copytree(bert_folder, tmp_path / "bert")
    (copy / "tokenizer.json").unlink()
    with pytest.raises(SpecError, match=r"a text model needs tokenizer\.json"):
        huggingface.load(copy)


def test_a_token_classifier_serves_logits_per_token(tmp_path):
    labels = ("O", "B-PER", "I-PER", "B-LOC", "I-LOC")
    folder = zoo.bert_classifier_folder(tmp_path, "BertForTokenClassification", labels)
    loaded = huggingface.load(folder)
    assert loaded.outputs == (OutputSpec("logits", "classification", ("batch", "sequence", 5)),)


def test_an_image_classifier_reads_an_image_folder_through_its_image_processor(
    vit_folder, tmp_path
):
    loaded = huggingface.load(vit_folder)
    assert loaded.text is None and loaded.inputs == ()  # the pixels tell the image size
    data = loaded.read(zoo.image_folder(tmp_path, per_label=3, seed=0), 4)
    assert data.batches[0]["pixel_values"].shape == (4, 3, 32, 32)
    assert data.labels.tolist() == [0, 0, 0, 1, 1, 1]
    (tmp_path / "empty").mkdir()
    with pytest.raises(SpecError, match="no images"):
        loaded.read(tmp_path / "empty", 4)


def test_feature_extraction_pools_as_the_folders_sentence_transformers_modules_say():
    assert pooling_of(minilm.model_dir()) == ("mean_tokens", True)


def test_without_sentence_transformers_modules_the_pooling_is_mean_without_normalizing(tmp_path):
    assert pooling_of(tmp_path) == ("mean_tokens", False)
    (tmp_path / "1_Pooling").mkdir()
    (tmp_path / "1_Pooling" / "config.json").write_text(
        json.dumps({"pooling_mode_cls_token": True})
    )
    modules = [{"path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}]
    (tmp_path / "modules.json").write_text(json.dumps(modules))
    assert pooling_of(tmp_path) == ("cls_token", False)


class _Hidden(torch.nn.Module):
    def forward(self, input_ids, attention_mask):
        from transformers.modeling_outputs import BaseModelOutput

        return BaseModelOutput(last_hidden_state=input_ids.unsqueeze(-1).float().expand(-1, -1, 2))


@pytest.mark.parametrize(
    ("pooling", "expected"),
    [
        ("cls_token", 1.0),
        ("mean_tokens", 2.0),
        ("max_tokens", 3.0),
        ("mean_sqrt_len_tokens", 6 / 3**0.5),
    ],
)
def test_each_pooling_mode_pools_over_the_attention_mask_only(pooling, expected):
    ids = torch.tensor([[1, 2, 3, 100]])
    mask = torch.tensor([[1, 1, 1, 0]])
    pooled = SentenceEmbedding(_Hidden(), pooling, normalize=False)(ids, mask)
    assert torch.allclose(pooled, torch.full((1, 2), expected))


def test_an_unknown_pooling_mode_is_refused():
    with pytest.raises(SpecError, match="pooling 'sum' is not one of"):
        SentenceEmbedding(_Hidden(), "sum")


def test_the_minilm_folder_gives_the_demo_models_embeddings(tmp_path):
    loaded = huggingface.load(minilm.model_dir())
    assert loaded.outputs == (OutputSpec("embedding", "embedding", ("batch", 384)),)
    feed = minilm.tokenize(minilm.load_tokenizer(), ["The chef baked fresh bread."])
    tensors = {k: torch.from_numpy(v) for k, v in feed.items()}
    with torch.no_grad():
        assert torch.allclose(
            loaded.module(**tensors), minilm.load_model("sdpa")(**tensors), atol=1e-5
        )
