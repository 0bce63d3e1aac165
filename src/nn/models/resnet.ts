import { lastUse } from '../../tensor/handover.js';
import { add } from '../../tensor/ops/elementwise.js';
import { relu } from '../../tensor/ops/elementwise.js';
import type { Tensor } from '../../tensor/tensor.js';
import { Rng } from '../../util/rng.js';
import { Conv2d, MaxPool2d } from '../layers/conv.js';
import { fillNormal } from '../layers/init_fill.js';
import { Linear } from '../layers/linear.js';
import { BatchNorm } from '../layers/norm.js';
import { GlobalAvgPool } from '../layers/pool.js';
import { Sequential } from '../layers/sequential.js';
import { Module } from '../module.js';

/**
 * ResNet (He et al. 2015) with torchvision's module names (conv1, bn1, layer1.0.conv1, ...,
 * downsample.0/1, fc), so parameters and BatchNorm running statistics map one to one onto a
 * torchvision state_dict. Bottleneck blocks stride in the 3×3 convolution (torchvision's "v1.5").
 */
export interface ResNetSpec {
  type: 'resnet';
  block: 'basic' | 'bottleneck';
  /** Blocks per stage, e.g. [2, 2, 2, 2] for resnet18. */
  blocks: number[];
  /** Channels of the first stage (64 in the paper); stages double it. */
  width: number;
  /** 'cifar': 3×3 stride-1 stem, no max-pool (32×32 inputs); 'imagenet': 7×7 stride-2 + max-pool. */
  stem: 'cifar' | 'imagenet';
  inChannels: number;
  inputSize: number;
  out: number;
}

/** A bias-free convolution with torchvision's kaiming_normal_(fan_out, relu) initialisation. */
function conv(inC: number, outC: number, k: number, stride: number, rng: Rng): Conv2d {
  const c = new Conv2d(inC, outC, k, rng, { stride, padding: Math.floor(k / 2), bias: false });
  fillNormal(c.weight, rng, Math.sqrt(2 / (outC * k * k)));
  return c;
}

/** 1×1 strided convolution + BatchNorm on the shortcut when the shape changes. */
function downsample(inC: number, outC: number, stride: number, rng: Rng): Sequential | null {
  if (stride === 1 && inC === outC) return null;
  return new Sequential(conv(inC, outC, 1, stride, rng), new BatchNorm(outC));
}

export class BasicBlock extends Module {
  static readonly expansion = 1;
  private readonly conv1: Conv2d;
  private readonly bn1: BatchNorm;
  private readonly conv2: Conv2d;
  private readonly bn2: BatchNorm;
  private readonly downsample: Sequential | null;

  constructor(inC: number, planes: number, stride: number, rng: Rng) {
    super();
    this.conv1 = this.registerModule('conv1', conv(inC, planes, 3, stride, rng));
    this.bn1 = this.registerModule('bn1', new BatchNorm(planes));
    this.conv2 = this.registerModule('conv2', conv(planes, planes, 3, 1, rng));
    this.bn2 = this.registerModule('bn2', new BatchNorm(planes));
    const ds = downsample(inC, planes, stride, rng);
    this.downsample = ds && this.registerModule('downsample', ds);
  }

  forward(x: Tensor): Tensor {
    // conv2 is the only reader of bn1's output (handover.ts: under bf16 it keeps a bf16 copy).
    const y = this.bn2.forward(this.conv2.forward(lastUse(this.bn1.forwardRelu(this.conv1.forward(x)))));
    return relu(add(y, this.downsample ? this.downsample.forward(x) : x));
  }
}

export class Bottleneck extends Module {
  static readonly expansion = 4;
  private readonly conv1: Conv2d;
  private readonly bn1: BatchNorm;
  private readonly conv2: Conv2d;
  private readonly bn2: BatchNorm;
  private readonly conv3: Conv2d;
  private readonly bn3: BatchNorm;
  private readonly downsample: Sequential | null;

  constructor(inC: number, planes: number, stride: number, rng: Rng) {
    super();
    const outC = planes * Bottleneck.expansion;
    this.conv1 = this.registerModule('conv1', conv(inC, planes, 1, 1, rng));
    this.bn1 = this.registerModule('bn1', new BatchNorm(planes));
    this.conv2 = this.registerModule('conv2', conv(planes, planes, 3, stride, rng));
    this.bn2 = this.registerModule('bn2', new BatchNorm(planes));
    this.conv3 = this.registerModule('conv3', conv(planes, outC, 1, 1, rng));
    this.bn3 = this.registerModule('bn3', new BatchNorm(outC));
    const ds = downsample(inC, outC, stride, rng);
    this.downsample = ds && this.registerModule('downsample', ds);
  }

  forward(x: Tensor): Tensor {
    // conv2 and conv3 are the only readers of bn1's and bn2's outputs (handover.ts).
    let y = this.bn1.forwardRelu(this.conv1.forward(x));
    y = this.bn2.forwardRelu(this.conv2.forward(lastUse(y)));
    y = this.bn3.forward(this.conv3.forward(lastUse(y)));
    return relu(add(y, this.downsample ? this.downsample.forward(x) : x));
  }
}

export class ResNet extends Module {
  private readonly conv1: Conv2d;
  private readonly bn1: BatchNorm;
  private readonly maxpool: MaxPool2d | null;
  private readonly stages: Sequential[];
  private readonly avgpool = new GlobalAvgPool();
  private readonly fc: Linear;

  constructor(spec: ResNetSpec, seed: number) {
    super();
    const rng = Rng.derive(seed, 0x524e4554);
    const Block = spec.block === 'basic' ? BasicBlock : Bottleneck;
    const imagenet = spec.stem === 'imagenet';
    this.conv1 = this.registerModule('conv1', imagenet
      ? conv(spec.inChannels, spec.width, 7, 2, rng)
      : conv(spec.inChannels, spec.width, 3, 1, rng));
    this.bn1 = this.registerModule('bn1', new BatchNorm(spec.width));
    this.maxpool = imagenet ? new MaxPool2d({ kernel: 3, stride: 2, padding: 1 }) : null;
    let inC = spec.width;
    this.stages = spec.blocks.map((n, s) => {
      const planes = spec.width * 2 ** s;
      const blocks: Module[] = [];
      for (let b = 0; b < n; b++) {
        blocks.push(new Block(inC, planes, b === 0 && s > 0 ? 2 : 1, rng));
        inC = planes * Block.expansion;
      }
      return this.registerModule(`layer${s + 1}`, new Sequential(...blocks));
    });
    this.fc = this.registerModule('fc', new Linear(inC, spec.out, rng));
  }

  forward(x: Tensor): Tensor {
    let y = this.bn1.forwardRelu(this.conv1.forward(x));
    if (this.maxpool) y = this.maxpool.forward(y);
    for (const stage of this.stages) y = stage.forward(y);
    return this.fc.forward(this.avgpool.forward(y));
  }
}

/** Blocks per stage of the published depths. */
export const RESNET_DEPTHS: Record<number, { block: ResNetSpec['block']; blocks: number[] }> = {
  18: { block: 'basic', blocks: [2, 2, 2, 2] },
  34: { block: 'basic', blocks: [3, 4, 6, 3] },
  50: { block: 'bottleneck', blocks: [3, 4, 6, 3] },
  101: { block: 'bottleneck', blocks: [3, 4, 23, 3] },
  152: { block: 'bottleneck', blocks: [3, 8, 36, 3] },
};

export function buildResNet(spec: ResNetSpec, seed: number): ResNet {
  if (spec.inputSize < (spec.stem === 'imagenet' ? 32 : 8)) {
    throw new Error(`resnet: input size ${spec.inputSize} is too small for the ${spec.stem} stem and three stride-2 stages`);
  }
  return new ResNet(spec, seed);
}

