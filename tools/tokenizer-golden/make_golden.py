#!/usr/bin/env python3
"""Make the tokenizer golden files of the 'lm' test suite.

Trains one small BPE tokenizer per family with the Hugging Face `tokenizers` trainer on a few
KB of text that ships with Debian 12, writes each one in that family's tokenizer.json format
(tools/tokenizer-golden/<family>.json), then encodes a few hundred test strings with
`tokenizers` and writes the ids (tests/lm/tokenizer-golden/<family>.json).

Families:
  gpt2        ByteLevel pre-tokenizer with the GPT-2 regex, merges as "a b" strings
  llama3      Split(Llama-3 regex) + ByteLevel(use_regex=false), ignore_merges, BOS template
  qwen2       NFC + Split(Qwen2 regex) + ByteLevel, merges as [a, b] pairs, chat added tokens
  spm-legacy  SentencePiece-style BPE: Prepend("▁") + Replace(" ", "▁") normalizers,
              byte fallback <0x..>, fuse_unk, BOS template (Llama-2 layout)
  metaspace   SentencePiece-style BPE with a Metaspace pre-tokenizer (prepend_scheme first)
  demo        the byte-level tokenizer of data/demo (golden ids only)

Run once, outside the repository's build: python3 -m venv /work/venv-tok &&
/work/venv-tok/bin/pip install tokenizers && /work/venv-tok/bin/python make_golden.py
"""
import glob
import json
import os
import sys

from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
from tokenizers import Regex, trainers

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
OUT_TOK = HERE
OUT_GOLD = os.path.join(ROOT, "tests", "lm", "tokenizer-golden")

LLAMA3_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|"
                  r" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
QWEN2_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}|"
                 r" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")

UNICODE_LINES = [
    "héllo wörld, façade, naïve café",
    "Ελληνικά κείμενα και Русский текст",
    "日本語のテキストと中文文本",
    "emoji 👍🏽 and 🎉🎉 and flags 🇩🇪",
    "combining e\u0301 and precomposed \u00e9, Å vs A\u030a",
    "العربية نص",
    "tabs\tand\u00a0no-break\u2003em space",
    "math: ∀x ∈ ℝ, x² ≥ 0 — ½ ⅓ ¼",
    "full-width：ＡＢＣ１２３",
]


def training_text():
    parts = [open("/usr/share/common-licenses/Apache-2.0", encoding="utf-8").read()]
    parts.append(open("/usr/lib/python3.11/json/decoder.py", encoding="utf-8").read()[:6000])
    parts.append(open("/usr/include/stdio.h", encoding="utf-8").read()[:4000])
    parts += UNICODE_LINES * 3
    return parts


def test_strings():
    cases = ["", " ", "  ", "\n", "a", "Hello", " Hello", "Hello world", "Hello  world",
             "   leading spaces", "trailing spaces   ", "a  b   c\t\td\n\n\ne  \n f",
             "I'm you'LL they'VE she'd it's WE'RE", "don't  can't",
             "1234567 12 3.14159 1e10 0x1F 007", "٣٤٥ and ①②", "x=1+2*3**4//5",
             "def f(x):\n    return x**2\n", "#include <stdio.h>\nint main(void) { return 0; }",
             "if (a && b || !c) { p->q[i] = *r; }", "    indented\n\tline\r\nwindows\r\n",
             "<s>", "</s>", "<s>hello</s>", "a<s>b", "x <|endoftext|> y",
             "<|im_start|>user\nhi<|im_end|>", "<|begin_of_text|>text", "<unk> <pad>",
             "<0x41> literal", "▁already ▁metaspace", "ĠĠ byte chars Ġ",
             "UPPER lower MiXeD", "snake_case camelCase kebab-case", "e-mail: a.b@c.org",
             "https://www.apache.org/licenses/LICENSE-2.0", "...!!!???", "—–-", "\u200b\u200d",
             "\x01\x02\x7f control", "a\u0300\u0301\u0302", "🏳️‍🌈 family 👨‍👩‍👧"]
    cases += UNICODE_LINES
    for name in ["/usr/lib/python3.11/textwrap.py", "/usr/include/string.h",
                 "/usr/share/common-licenses/MPL-2.0"]:
        lines = open(name, encoding="utf-8").read().split("\n")
        picked = [l for l in lines if l.strip()][:90]
        cases += picked
        cases.append("\n".join(lines[20:45]))
    return cases


def bpe_train(tok, vocab_size, special, alphabet=None):
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=special,
                                  initial_alphabet=alphabet or [], show_progress=False)
    tok.train_from_iterator(training_text(), trainer)
    return tok


def make_gpt2():
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    bpe_train(tok, 700, ["<|endoftext|>"], pre_tokenizers.ByteLevel.alphabet())
    d = json.loads(tok.to_str())
    d["model"]["merges"] = [" ".join(m) if isinstance(m, list) else m
                            for m in d["model"]["merges"]]
    return d


def make_llama3():
    tok = Tokenizer(models.BPE(ignore_merges=True))
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(LLAMA3_PATTERN), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=False)])
    tok.decoder = decoders.ByteLevel()
    bpe_train(tok, 800, ["<|begin_of_text|>", "<|end_of_text|>", "<|eot_id|>"],
              pre_tokenizers.ByteLevel.alphabet())
    bos = tok.token_to_id("<|begin_of_text|>")
    tok.post_processor = processors.Sequence([
        processors.ByteLevel(trim_offsets=False),
        processors.TemplateProcessing(single="<|begin_of_text|> $A",
                                      pair="<|begin_of_text|> $A <|begin_of_text|> $B:1",
                                      special_tokens=[("<|begin_of_text|>", bos)])])
    return json.loads(tok.to_str())


def make_qwen2():
    tok = Tokenizer(models.BPE())
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(QWEN2_PATTERN), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False)])
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    bpe_train(tok, 800, ["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
              pre_tokenizers.ByteLevel.alphabet())
    return json.loads(tok.to_str())


def spm_layout(trained, legacy):
    """Rebuilds a trained Metaspace BPE in the Llama-2 layout: <unk> <s> </s>, then the
    256 byte-fallback tokens, then the learned tokens."""
    src = json.loads(trained.to_str())
    vocab = {"<unk>": 0, "<s>": 1, "</s>": 2}
    for b in range(256):
        vocab["<0x%02X>" % b] = 3 + b
    for token, _ in sorted(src["model"]["vocab"].items(), key=lambda kv: kv[1]):
        if token not in vocab:
            vocab[token] = len(vocab)
    added = [{"id": i, "content": c, "single_word": False, "lstrip": False, "rstrip": False,
              "normalized": False, "special": True} for i, c in enumerate(["<unk>", "<s>", "</s>"])]
    d = {
        "version": "1.0", "truncation": None, "padding": None, "added_tokens": added,
        "normalizer": None, "pre_tokenizer": None,
        "post_processor": {
            "type": "TemplateProcessing",
            "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}},
                       {"Sequence": {"id": "A", "type_id": 0}}],
            "pair": [{"SpecialToken": {"id": "<s>", "type_id": 0}},
                     {"Sequence": {"id": "A", "type_id": 0}},
                     {"SpecialToken": {"id": "<s>", "type_id": 1}},
                     {"Sequence": {"id": "B", "type_id": 1}}],
            "special_tokens": {"<s>": {"id": "<s>", "ids": [1], "tokens": ["<s>"]}}},
        "decoder": {"type": "Sequence", "decoders": [
            {"type": "Replace", "pattern": {"String": "▁"}, "content": " "},
            {"type": "ByteFallback"}, {"type": "Fuse"},
            {"type": "Strip", "content": " ", "start": 1, "stop": 0}]},
        "model": {"type": "BPE", "dropout": None, "unk_token": "<unk>",
                  "continuing_subword_prefix": None, "end_of_word_suffix": None,
                  "fuse_unk": True, "byte_fallback": True, "ignore_merges": False,
                  "vocab": vocab, "merges": src["model"]["merges"]},
    }
    if legacy:
        d["normalizer"] = {"type": "Sequence", "normalizers": [
            {"type": "Prepend", "prepend": "▁"},
            {"type": "Replace", "pattern": {"String": " "}, "content": "▁"}]}
    else:
        d["pre_tokenizer"] = {"type": "Metaspace", "replacement": "▁",
                              "prepend_scheme": "first", "split": False}
    return d


def train_metaspace():
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always",
                                                 split=True)
    # a limited alphabet, so that rare characters exercise the byte fallback
    trainer = trainers.BpeTrainer(vocab_size=700, special_tokens=["<unk>"], limit_alphabet=90,
                                  show_progress=False)
    tok.train_from_iterator(training_text(), trainer)
    return tok


def main():
    os.makedirs(OUT_GOLD, exist_ok=True)
    trained_spm = train_metaspace()
    families = {
        "gpt2": make_gpt2(),
        "llama3": make_llama3(),
        "qwen2": make_qwen2(),
        "spm-legacy": spm_layout(trained_spm, legacy=True),
        "metaspace": spm_layout(trained_spm, legacy=False),
    }
    cases = test_strings()
    for name, d in list(families.items()) + [("demo", None)]:
        if d is None:
            tok_path = os.path.join(ROOT, "data", "demo", "base", "tokenizer.json")
            rel = "data/demo/base/tokenizer.json"
        else:
            tok_path = os.path.join(OUT_TOK, name + ".json")
            rel = "tools/tokenizer-golden/" + name + ".json"
            with open(tok_path, "w", encoding="utf-8") as f:
                json.dump(d, f, ensure_ascii=False, indent=1)
                f.write("\n")
        tok = Tokenizer.from_file(tok_path)
        out = {"tokenizer": rel, "cases": []}
        for text in cases:
            out["cases"].append({
                "text": text,
                "ids": tok.encode(text, add_special_tokens=True).ids,
                "ids_no_special": tok.encode(text, add_special_tokens=False).ids,
            })
        with open(os.path.join(OUT_GOLD, name + ".json"), "w", encoding="utf-8") as f:
            json.dump(out, f, ensure_ascii=False)
            f.write("\n")
        print(name, len(cases), "cases", file=sys.stderr)


if __name__ == "__main__":
    main()
