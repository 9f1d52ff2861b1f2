// The KVM-style mirror client now lives in src/drivers/kvm; the explorer tests import it here.
export { KvmMirror } from '../../src/drivers/kvm/kvm-mirror.ts';
