"""glmix_mm/engine/mmengine_internals.py: the private MMEngine names glmix_mm uses exist in the
installed MMEngine, and reach what the runner does."""
import mmengine

from glmix_mm.engine import mmengine_internals as internals


def test_the_private_names_exist(make_runner):
    missing = internals.missing_internals(make_runner())
    assert not missing, (
        f'MMEngine {mmengine.__version__} lacks private names that glmix_mm uses (written '
        f'against MMEngine {internals.WRITTEN_AGAINST}; update '
        f'glmix_mm/engine/mmengine_internals.py): {", ".join(missing)}')


def test_they_read_and_change_what_the_runner_does(make_runner, tmp_path):
    runner = make_runner(resume=True, load_from=str(tmp_path / 'a.pth'))
    assert internals.resumes(runner) and not internals.trains(runner)  # not yet training
    assert internals.checkpoint_to_load(runner) == str(tmp_path / 'a.pth')
    internals.set_checkpoint_to_load(runner, 'b.pth')
    internals.cancel_resume(runner)
    assert internals.checkpoint_to_load(runner) == 'b.pth' and not internals.resumes(runner)
    loop = runner.train_loop  # built, as runner.train() builds it
    assert internals.trains(runner)
    internals.end_epoch(loop)
    assert loop.epoch == 1


def test_a_renamed_name_is_reported_with_its_use(make_runner, monkeypatch):
    from mmengine.hooks import CheckpointHook
    runner = make_runner()
    monkeypatch.delattr(CheckpointHook, '_save_checkpoint_with_step')
    assert internals.missing_internals(runner) == [
        'CheckpointHook._save_checkpoint_with_step (writing one checkpoint)']
