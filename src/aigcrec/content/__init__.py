"""aigcrec.content"""
