"""subguard.testing"""
