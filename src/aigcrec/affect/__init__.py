"""aigcrec.affect"""
