"""Train with Accelerate: a StyleGAN2 teacher on an image folder, or a LiftedGAN from a teacher.

    accelerate launch train_accelerate.py stylegan2 --train_data_dir faces/ --output_dir teacher/
    accelerate launch train_accelerate.py lift --teacher teacher/ --output_dir liftedgan/

See ``python train_accelerate.py {stylegan2,lift} --help`` for every flag.
"""

from liftedgan_hf.training.script import main

if __name__ == "__main__":
    main()
