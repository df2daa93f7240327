"""subguard.log"""
