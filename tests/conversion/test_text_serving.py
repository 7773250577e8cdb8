import json

import pytest

from conversion import minilm
from conversion.spec import SpecError
from conversion.text_serving import TextServing, padding_id, write_text_models
from conversion.triton_config import read_config


def _tokenizer(tmp_path, pad_token):
    """MiniLM's tokenizer.json without its padding setting, `[unused0]` (id 1) renamed
    `pad_token` and no [PAD] token."""
    data = json.loads(minilm.tokenizer_file().read_text())
    data["padding"] = None
    data["added_tokens"] = [t for t in data["added_tokens"] if t["content"] != "[PAD]"]
    vocab = data["model"]["vocab"]
    del vocab["[PAD]"]
    vocab[pad_token] = vocab.pop("[unused0]")
    path = tmp_path / "tokenizer.json"
    path.write_text(json.dumps(data))
    return path


def test_the_padding_id_comes_from_the_tokenizers_padding_setting():
    assert padding_id(minilm.tokenizer_file()) == 0


def test_without_a_padding_setting_the_pad_token_gives_the_padding_id(tmp_path):
    assert padding_id(_tokenizer(tmp_path, "<pad>")) == 1


def test_without_a_pad_token_the_padding_id_is_zero(tmp_path):
    assert padding_id(_tokenizer(tmp_path, "[SOMETHING]")) == 0


def test_buckets_stop_at_the_models_position_limit():
    assert TextServing.for_tokenizer(minilm.tokenizer_file(), 64).buckets == (16, 32, 64)
    assert TextServing.for_tokenizer(minilm.tokenizer_file(), 100).buckets == (16, 32, 64, 100)
    assert TextServing.for_tokenizer(minilm.tokenizer_file(), 512).buckets == (16, 32, 64, 128)


def test_each_served_variant_gets_an_ensemble_with_all_its_outputs(minilm_converted):
    repository = minilm_converted.repository
    config = read_config(repository / "minilm_text" / "config.pbtxt")
    member = read_config(repository / "minilm" / "config.pbtxt")
    assert [o.name for o in config.output] == [o.name for o in member.output]
    tokenizer = read_config(repository / "minilm_tokenizer" / "config.pbtxt")
    assert tokenizer.parameters["pad_id"].string_value == "0"
    assert tokenizer.parameters["buckets"].string_value == "16,32,64,128"


def test_a_model_that_does_not_take_token_ids_and_a_mask_cannot_get_a_tokenizer(digits_converted):
    text = TextServing(minilm.tokenizer_file())
    with pytest.raises(
        SpecError, match=r"'digits' takes \['image'\]: a model behind the tokenizer takes"
    ):
        write_text_models(digits_converted.repository, "digits", ["digits"], text)


def test_the_tokenizer_config_names_its_character_budget(tmp_path):
    from conversion.text_serving import write_tokenizer

    write_tokenizer(tmp_path, "t_tokenizer", TextServing(minilm.tokenizer_file()))
    config = read_config(tmp_path / "t_tokenizer" / "config.pbtxt")
    assert config.parameters["max_chars"].string_value == "4096"  # 32 characters x 128 tokens
