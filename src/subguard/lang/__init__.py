"""subguard.lang"""
