#!/usr/bin/python3
"""Builds the Austen training corpus from Debian's r-cran-janeaustenr package.

Cleaning: the package gives Project Gutenberg lines hard-wrapped at ~70
columns. Lines are joined into paragraphs (one paragraph per output line),
runs of spaces are folded to one, and Gutenberg's _italic_ underscores are
dropped. Title pages and chapter headings are kept: they are part of the text.

Split (fixed, documented, never trained on): for every novel, the last
VALID_FRACTION of its paragraphs (by count, rounded up) is validation text;
the rest is training text. Output: OUT/train.txt, OUT/valid.txt, and
OUT/valid_<book>.txt per novel.

Usage: scripts/prepare_corpus.py OUT_DIR
"""
import os
import re
import subprocess
import sys
import tempfile

VALID_FRACTION = 0.05


def read_books():
    """Returns [(book_title, [raw lines])] in the package's order."""
    with tempfile.TemporaryDirectory() as tmp:
        text_path = os.path.join(tmp, "text.txt")
        book_path = os.path.join(tmp, "book.txt")
        script = ('b <- janeaustenr::austen_books(); '
                  f'writeLines(b$text, "{text_path}", useBytes=TRUE); '
                  f'writeLines(as.character(b$book), "{book_path}")')
        subprocess.run(["Rscript", "-e", script], check=True)
        with open(text_path, encoding="utf-8") as f:
            lines = f.read().split("\n")
        with open(book_path, encoding="utf-8") as f:
            books = f.read().split("\n")
    out = []
    for line, book in zip(lines, books):
        if not book:
            continue
        if not out or out[-1][0] != book:
            out.append((book, []))
        out[-1][1].append(line)
    return out


def paragraphs(lines):
    paras, cur = [], []
    for line in lines + [""]:
        line = line.strip()
        if line:
            cur.append(line)
        elif cur:
            text = " ".join(cur).replace("_", "")
            paras.append(re.sub(r" {2,}", " ", text))
            cur = []
    return paras


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: scripts/prepare_corpus.py OUT_DIR")
    out_dir = sys.argv[1]
    os.makedirs(out_dir, exist_ok=True)
    train, valid = [], []
    for book, lines in read_books():
        paras = paragraphs(lines)
        n_valid = -(-len(paras) * int(VALID_FRACTION * 1000) // 1000)
        train += paras[:-n_valid]
        valid += paras[-n_valid:]
        slug = re.sub(r"[^a-z]+", "_", book.lower()).strip("_")
        with open(os.path.join(out_dir, f"valid_{slug}.txt"), "w", encoding="utf-8") as f:
            f.write("\n".join(paras[-n_valid:]) + "\n")
    for name, paras in (("train.txt", train), ("valid.txt", valid)):
        with open(os.path.join(out_dir, name), "w", encoding="utf-8") as f:
            f.write("\n".join(paras) + "\n")
        size = os.path.getsize(os.path.join(out_dir, name))
        print(f"{name}: {len(paras)} paragraphs, {size} bytes", file=sys.stderr)


if __name__ == "__main__":
    main()
