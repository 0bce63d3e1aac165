/**
 * Training-time augmentation of image samples, applied by the loader to each gathered sample. The
 * random choices come from Rng.derive(seed, epoch, sample index): the same sample gets the same
 * crop in an epoch however the data is sharded or batched, so N workers still take the steps of
 * one process, and another epoch gets another crop.
 */
import { Rng } from '../util/rng.js';
import type { SampleTransform } from './dataset.js';

export interface CropFlipOptions {
  seed: number;
  /** Height and width of the (square) images. */
  size: number;
  channels: number;
  /** Zero-padding on each side before the crop, in pixels (torchvision's RandomCrop(size, padding)). */
  padding: number;
  /** Per channel: the value a padded pixel takes (a black pixel, after normalisation). */
  padValue: readonly number[];
}

/**
 * RandomCrop(size, padding) then RandomHorizontalFlip(0.5), as in the usual CIFAR recipe: the image
 * is shifted by up to `padding` pixels each way (uncovered pixels take padValue) and mirrored half
 * the time.
 */
export function randomCropFlip(o: CropFlipOptions): SampleTransform {
  const { size, channels, padding } = o;
  const plane = size * size;
  const copy = new Float32Array(channels * plane);
  return (input, index, epoch) => {
    const rng = Rng.derive(o.seed, 0x61756720, epoch, index);
    const dy = rng.int(2 * padding + 1) - padding;
    const dx = rng.int(2 * padding + 1) - padding;
    const flip = rng.uniform() < 0.5;
    copy.set(input);
    for (let c = 0; c < channels; c++) {
      const src = copy.subarray(c * plane, (c + 1) * plane);
      const dst = input.subarray(c * plane, (c + 1) * plane);
      for (let y = 0; y < size; y++) {
        const sy = y + dy;
        for (let x = 0; x < size; x++) {
          const sx = (flip ? size - 1 - x : x) + dx;
          dst[y * size + x] = sy >= 0 && sy < size && sx >= 0 && sx < size ? src[sy * size + sx] : o.padValue[c];
        }
      }
    }
  };
}
