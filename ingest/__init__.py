"""Turn files (text, Markdown, HTML, PDF, JSONL) into chunked, embedded passages in Chroma."""
