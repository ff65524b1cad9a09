import pytest

from studio.generate import GenerationSettings, build_prompt, generate, stop_ids


def test_greedy_is_deterministic_and_japanese(embedded):
    s = GenerationSettings(max_new_tokens=24, greedy=True)
    a = generate(embedded, "富士山は", s)
    b = generate(embedded, "富士山は", s)
    assert a.text == b.text and a.new_tokens > 0
    assert any("\u3040" <= ch <= "\u30ff" or "\u4e00" <= ch <= "\u9fff" for ch in a.text)


def test_sampling_follows_the_seed(embedded):
    s1 = GenerationSettings(max_new_tokens=24, seed=1, temperature=1.0)
    s2 = GenerationSettings(max_new_tokens=24, seed=2, temperature=1.0)
    assert generate(embedded, "今日は", s1).text == generate(embedded, "今日は", s1).text
    texts = {generate(embedded, "今日は", s).text for s in (s1, s2)}
    texts.add(generate(embedded, "今日は", GenerationSettings(max_new_tokens=24, seed=3)).text)
    assert len(texts) >= 2


def test_length_stop_is_reported(embedded):
    r = generate(embedded, "富士山は", GenerationSettings(max_new_tokens=3, greedy=True))
    assert (r.new_tokens, r.stop_reason, r.stop_token) == (3, "length", None)


def test_eos_stop_is_reported(embedded):
    import copy

    first = generate(embedded, "富士山は", GenerationSettings(max_new_tokens=1, greedy=True))
    first_id = embedded.tokenizer.convert_tokens_to_ids(
        embedded.tokenizer.tokenize(first.raw_text)[0]
    )
    model = copy.copy(embedded.model)
    model.generation_config = copy.deepcopy(embedded.model.generation_config)
    model.generation_config.eos_token_id = [first_id]
    patched = type(embedded)(**{**embedded.__dict__, "model": model})
    r = generate(patched, "富士山は", GenerationSettings(max_new_tokens=10, greedy=True))
    assert r.stop_reason == "eos" and r.new_tokens == 1
    assert r.stop_token == embedded.tokenizer.convert_ids_to_tokens(first_id)


def test_stop_ids_include_eos_and_end_of_turn(embedded):
    tok = embedded.tokenizer
    ids = stop_ids(embedded.model, tok)
    assert tok.eos_token_id in ids
    assert tok.convert_tokens_to_ids("<|im_end|>") in ids


def test_chat_prompt_has_one_bos_and_ends_at_assistant_turn(embedded):
    tok = embedded.tokenizer
    ids = build_prompt(tok, "こんにちは", chat=True, system="丁寧に答えてください。")
    assert ids.count(tok.bos_token_id) == 1
    assert tok.decode(ids).endswith("<|im_start|>assistant\n")
    r = generate(
        embedded, "こんにちは", GenerationSettings(max_new_tokens=8, greedy=True), chat=True
    )
    assert r.prompt_tokens == len(build_prompt(tok, "こんにちは", chat=True))


@pytest.mark.parametrize(
    "bad",
    [
        {"max_new_tokens": 0},
        {"temperature": 0},
        {"top_p": 1.5},
        {"repetition_penalty": 0},
    ],
)
def test_invalid_settings(bad):
    with pytest.raises(ValueError):
        GenerationSettings(**bad).validate()


def test_empty_prompt_is_refused_in_plain_mode_only_if_it_tokenizes_to_nothing(embedded):
    # The tokenizer adds BOS, so an empty prompt still gives the model a start token.
    r = generate(embedded, "", GenerationSettings(max_new_tokens=4, greedy=True))
    assert r.prompt_tokens == 1
