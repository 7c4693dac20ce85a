"""Prompt templates shipped as package data; loaded and validated by ``assistant.prompts``."""
