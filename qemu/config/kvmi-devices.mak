# Devices of the lean KVMI QEMU (configs/devices/x86_64-softmmu/kvmi.mak,
# used with --without-default-devices --with-devices-x86_64=kvmi).
# Boards: microvm (the nested e2e test, with qboot), q35 and pc.
CONFIG_MICROVM=y
CONFIG_Q35=y
CONFIG_I440FX=y

# virtio (virtio-mmio on microvm, virtio-pci on q35/pc)
CONFIG_VIRTIO_BLK=y
CONFIG_VIRTIO_SERIAL=y
CONFIG_VIRTIO_RNG=y
