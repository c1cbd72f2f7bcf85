"""aigcrec.ranking"""
