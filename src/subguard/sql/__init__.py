"""subguard.sql"""
