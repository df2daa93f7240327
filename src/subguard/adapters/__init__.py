"""subguard.adapters"""
