"""Transfer: fine-tuning the pretrained policy on LIBERO manipulation and navigation."""
