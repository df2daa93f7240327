"""subguard.cli"""
