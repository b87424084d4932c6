"""Call recording: stereo WAV files written as the call goes (`writer`), the recorder that opens
them and repairs what a crash left (`recorder`), and the stores they go to (`stores`)."""
