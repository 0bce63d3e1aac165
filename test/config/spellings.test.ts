import assert from 'node:assert/strict';
import { test } from 'node:test';
import { canonicalDataset, canonicalModel } from '../../src/config/spellings.js';
import { datasetFlag, modelFlag } from '../../src/cli/train_flags.js';

test('the guide\'s and other spellings of models and datasets map to one canonical name each', () => {
  const models: Array<[string, string]> = [
    ['simple_cnn', 'simple_cnn'], ['SimpleCNN', 'simple_cnn'], ['simple-cnn', 'simple_cnn'], ['cnn', 'cnn'], ['SimpleNN', 'mlp'], ['MLP', 'mlp'],
    ['resnet50', 'resnet50'], ['ResNet-50', 'resnet50'], ['RESNET18', 'resnet18'], ['gpt2', 'gpt2'], ['GPT-2', 'gpt2'], ['gpt2_medium', 'gpt2-medium'],
    ['bert', 'bert'], ['BERT-Base', 'bert-base'],
  ];
  for (const [spelling, name] of models) assert.equal(canonicalModel(spelling), name, spelling);
  const datasets: Array<[string, string]> = [
    ['MNIST', 'mnist'], ['cifar10', 'cifar10'], ['CIFAR-10', 'cifar10'], ['synthetic_image', 'synthetic_image'], ['synthetic-image', 'synthetic_image'],
    ['Synthetic_Text', 'synthetic_text'], ['synthetic_regression', 'synthetic-regression'], ['TEXT', 'text'],
  ];
  for (const [spelling, name] of datasets) assert.equal(canonicalDataset(spelling), name, spelling);
  for (const unknown of ['resnet', 'gpt3', 'vit']) assert.equal(canonicalModel(unknown), null, unknown);
  assert.equal(canonicalDataset('imagenet'), null);
});

test('an unknown name is refused with the accepted ones', () => {
  assert.equal(modelFlag('ResNet-18'), 'resnet18');
  assert.throws(() => modelFlag('vit'), /unknown model "vit"; accepted: mlp, cnn, simple_cnn, resnet18.*SimpleNN for mlp/);
  assert.throws(() => datasetFlag('imagenet'), /unknown dataset "imagenet"; accepted: mnist, synthetic-regression, .*CIFAR-10/);
});
