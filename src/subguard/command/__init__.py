"""subguard.command"""
