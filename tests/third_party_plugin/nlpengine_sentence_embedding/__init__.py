"""Example third-party plugin for nlpengine."""
